//! DNS transport: hickory's `Server` for sockets and wire format, our own
//! `RequestHandler` for every decision (see DESIGN.md §3).
//!
//! The handler reads the zone table once per request (`ArcSwap::load`, no
//! locks), plans the response with the pure [`respond::plan`] and hands the
//! sections to hickory's encoder.

pub mod respond;

use crate::zone::SharedZones;
use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// Idle timeout for TCP connections (RFC 7766 suggests seconds, not minutes).
pub const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection outgoing response buffer (in messages) for TCP.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Our request handler: answers from the shared zone table.
#[derive(Clone)]
pub struct Handler {
    zones: SharedZones,
}

impl Handler {
    /// A handler answering from `zones`.
    pub fn new(zones: SharedZones) -> Self {
        Self { zones }
    }
}

/// A SERVFAIL header for when sending the planned response failed.
fn servfail_info(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let plan = {
            let zones = self.zones.load();
            respond::plan(request, &zones, request.protocol())
        };
        let (answers, authority, additional) = plan.sections();
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = plan.edns.as_ref() {
            builder.edns(edns);
        }
        let response = builder.build(
            plan.metadata,
            answers.iter(),
            authority.iter(),
            std::iter::empty(),
            additional.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "sending DNS response failed");
                servfail_info(request)
            }
        }
    }
}

/// Bind UDP and TCP on `addr` and answer from `zones` until the process ends.
/// Returns once both sockets are bound; serving continues on a spawned task.
pub async fn spawn(
    addr: SocketAddr,
    zones: SharedZones,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    spawn_bound(addr, zones).await.map(|(_, handle)| handle)
}

/// Like [`spawn`], also returning the bound address (useful with port 0:
/// TCP is bound to the port UDP received).
pub async fn spawn_bound(
    addr: SocketAddr,
    zones: SharedZones,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let udp = UdpSocket::bind(addr).await?;
    let local = udp.local_addr()?;
    let tcp = TcpListener::bind(local).await?;
    Ok((local, serve(udp, tcp, zones)))
}

/// Serve on already-bound sockets (tests and callers that need the ports).
pub fn serve(udp: UdpSocket, tcp: TcpListener, zones: SharedZones) -> tokio::task::JoinHandle<()> {
    let mut server = Server::new(Handler::new(zones));
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
    tokio::spawn(async move {
        if let Err(error) = server.block_until_done().await {
            tracing::error!(%error, "DNS server stopped");
        }
    })
}

#[cfg(test)]
mod tests;
