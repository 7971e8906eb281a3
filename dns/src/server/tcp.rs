//! DNS over TCP (RFC 7766) on our own accept loop: length-prefixed
//! messages answered in order on each connection, closed after
//! [`super::TCP_TIMEOUT`] idle. Ordinary queries go through the same
//! planner and encoder as UDP; zone transfers stream many messages per
//! request, which hickory's TCP server cannot (it queues at most a few
//! responses and only writes them between requests).

use super::xfr::{self, Prepared};
use super::{wire, Decision, Handler};
use hickory_proto::op::MessageType;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};

/// Accept connections on `listener` and answer them with `handler` until
/// the listener fails for good.
pub async fn serve(listener: TcpListener, handler: Handler) {
    loop {
        let (stream, src) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors or an aborted handshake: keep going
                // after a pause rather than spinning.
                tracing::debug!(%error, "accepting a TCP connection failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(error) = connection(stream, src, &handler).await {
                tracing::debug!(%src, %error, "TCP connection ended");
            }
        });
    }
}

/// Answer the requests of one connection in order.
async fn connection(stream: TcpStream, src: SocketAddr, handler: &Handler) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let mut wr = BufWriter::new(wr);
    let mut out = Vec::with_capacity(512);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(super::TCP_TIMEOUT, rd.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            // Idle, closed by the client, or reset: done.
            _ => return Ok(()),
        }
        let n = usize::from(u16::from_be_bytes(len));
        let mut raw = vec![0u8; n];
        match tokio::time::timeout(super::TCP_TIMEOUT, rd.read_exact(&mut raw)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let mut head = [0u8; 12];
        if let Some(h) = raw.get(..12) {
            head.copy_from_slice(h);
        }
        let request = match Request::from_bytes(raw, src, Protocol::Tcp) {
            Ok(r) => r,
            Err(_) => {
                if n >= 12 && wire::undecodable(&head, &mut out).is_some() {
                    write_frame(&mut wr, &out).await?;
                }
                continue;
            }
        };
        if request.metadata.message_type != MessageType::Query {
            continue;
        }
        if super::update::is_update(handler, &request) {
            let m = super::update::answer(handler, &request).await;
            write_frame(&mut wr, &m).await?;
            continue;
        }
        if handler.transfers.is_some() && xfr::is_transfer_path(&request) {
            match xfr::prepare(handler, &request, Protocol::Tcp) {
                Prepared::Reply(m) => write_frame(&mut wr, &m).await?,
                Prepared::Nothing => {}
                Prepared::Transfer(job) => xfr::stream(handler, job, &mut wr).await?,
            }
            continue;
        }
        let started = std::time::Instant::now();
        let zones = handler.zones.load_full();
        let plan = match handler.plan_now(&request, &zones) {
            Decision::Ready(plan) => plan,
            Decision::Offload => match handler.plan_offloaded(&request, zones).await {
                Some(plan) => plan,
                None => super::servfail_plan(&request.metadata),
            },
        };
        wire::encode(&plan, &request.queries, Protocol::Tcp, &mut out);
        let qtype = request
            .queries
            .queries()
            .first()
            .map(|q| u16::from(q.query_type()));
        handler
            .metrics
            .shared(super::metrics::Transport::Tcp)
            .answered(
                u16::from(plan.metadata.response_code),
                qtype,
                started.elapsed(),
            );
        write_frame(&mut wr, &out).await?;
    }
}

/// Write one length-prefixed message and flush it.
async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    msg: &[u8],
) -> std::io::Result<()> {
    let Ok(len) = u16::try_from(msg.len()) else {
        return Ok(());
    };
    let write = async {
        wr.write_all(&len.to_be_bytes()).await?;
        wr.write_all(msg).await?;
        wr.flush().await
    };
    tokio::time::timeout(super::TCP_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}
