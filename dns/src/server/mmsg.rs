//! Datagrams in batches: one `recvmmsg` reads up to [`SLOTS`] queries and
//! one `sendmmsg` writes their answers, instead of a system call per
//! datagram each way (what Knot's UDP workers do too).
//!
//! A receive blocks until the first datagram and takes what else is
//! waiting without blocking again (`MSG_WAITFORONE`); sends never block.

use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Datagrams per batch. At 100k queries a second a loop finds a few dozen
/// waiting after each wake-up; more slots only hold more memory.
pub const SLOTS: usize = 32;

/// Buffers for one `recvmmsg`.
pub struct Received {
    bufs: [Box<[u8]>; SLOTS],
    got: Vec<(usize, Option<SocketAddr>)>,
    headers: Headers,
}

impl Received {
    /// [`SLOTS`] buffers of `size` bytes each.
    pub fn new(size: usize) -> Self {
        Received {
            bufs: std::array::from_fn(|_| vec![0u8; size].into_boxed_slice()),
            got: Vec::with_capacity(SLOTS),
            headers: Headers(MultiHeaders::preallocate(SLOTS, None)),
        }
    }

    /// Block until a datagram arrives on `fd` (a blocking socket), then read
    /// it and whatever else is waiting, up to `want`: the count, or
    /// `WouldBlock` when the socket's receive timeout passed first.
    pub fn wait(&mut self, fd: BorrowedFd<'_>, want: usize) -> io::Result<usize> {
        self.got.clear();
        // On the stack: nothing is allocated per call. Only `want` headers
        // are prepared: at low rates a wake-up finds one datagram, and
        // setting up all 32 would cost more than the call saves.
        let mut slices = self.bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
        let want = want.clamp(1, SLOTS);
        let results = recvmmsg(
            fd.as_raw_fd(),
            &mut self.headers.0,
            slices[..want].iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )
        .map_err(io::Error::from)?;
        self.got
            .extend(results.map(|m| (m.bytes, m.address.as_ref().and_then(socket_addr))));
        Ok(self.got.len())
    }

    /// Datagram `i` of the last batch and its sender (`None`: a sender
    /// that is not IPv4 or IPv6, which cannot be answered).
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (len, src) = *self.got.get(i)?;
        Some((self.bufs.get(i)?.get(..len)?, src?))
    }
}

/// Answers waiting for one `sendmmsg`.
#[allow(clippy::len_without_is_empty)] // filled and emptied by one loop; never asked
pub struct Outgoing {
    bufs: [Vec<u8>; SLOTS],
    to: Vec<Option<SockaddrStorage>>,
    headers: Headers,
}

impl Outgoing {
    /// Room for [`SLOTS`] answers of up to `size` bytes without growing.
    pub fn new(size: usize) -> Self {
        Outgoing {
            bufs: std::array::from_fn(|_| Vec::with_capacity(size)),
            to: Vec::with_capacity(SLOTS),
            headers: Headers(MultiHeaders::preallocate(SLOTS, None)),
        }
    }

    /// The buffer the next answer is written into (kept only by
    /// [`Outgoing::push`]); `None` when the batch is full.
    pub fn next_buffer(&mut self) -> Option<&mut Vec<u8>> {
        self.bufs.get_mut(self.to.len())
    }

    /// Keep the answer just written into [`Outgoing::next_buffer`], for `to`.
    pub fn push(&mut self, to: SocketAddr) {
        if self.to.len() < self.bufs.len() {
            self.to.push(Some(storage(to)));
        }
    }

    /// Answers waiting.
    pub fn len(&self) -> usize {
        self.to.len()
    }

    /// Answer `i` and its destination.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let to = self.to.get(i)?.as_ref().and_then(socket_addr)?;
        Some((self.bufs.get(i)?, to))
    }

    /// Send answers `from..` in one call; how many the kernel took (at
    /// least one), or the error of the first.
    pub fn send(&mut self, fd: BorrowedFd<'_>, from: usize) -> io::Result<usize> {
        let to = match self.to.get(from..) {
            Some(t) if !t.is_empty() => t,
            _ => return Ok(0),
        };
        // On the stack; nix pairs them with `to`, so the count is `to`'s.
        let slices = self.bufs.each_ref().map(|b| [IoSlice::new(b)]);
        let sent = sendmmsg(
            fd.as_raw_fd(),
            &mut self.headers.0,
            slices[from..].iter(),
            to,
            [],
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(sent.count())
    }

    /// Forget every answer (after sending).
    pub fn clear(&mut self) {
        self.to.clear();
    }
}

/// nix's message headers, owned by one receive loop. They hold raw
/// pointers, so they are not `Send` by default; a loop's task may move
/// between runtime threads, taking them along.
struct Headers(MultiHeaders<SockaddrStorage>);

// SAFETY: the pointers inside point at the headers' own address storage or
// at buffers of the call that filled them; they are written afresh by each
// recvmmsg/sendmmsg and read only within that call, and nothing else holds
// them, so moving the whole to another thread cannot race.
unsafe impl Send for Headers {}

fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    s.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

fn storage(addr: SocketAddr) -> SockaddrStorage {
    match addr {
        SocketAddr::V4(v4) => v4.into(),
        SocketAddr::V6(v6) => v6.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn a_batch_round_trips_with_its_senders() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut rx = Received::new(512);
        assert_eq!(
            rx.wait(server.as_fd(), SLOTS).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for (i, c) in clients.iter().enumerate() {
            c.send_to(&[i as u8; 5], server.local_addr().unwrap())
                .unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        // A batch of at most two takes two; the next takes the third.
        assert_eq!(rx.wait(server.as_fd(), 2).unwrap(), 2);
        assert_eq!(rx.get(1).unwrap().0, &[1u8; 5]);
        assert_eq!(rx.wait(server.as_fd(), SLOTS).unwrap(), 1);
        assert_eq!(rx.get(0).unwrap().0, &[2u8; 5]);
        for (i, c) in clients.iter().enumerate() {
            c.send_to(&[i as u8; 5], server.local_addr().unwrap())
                .unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(rx.wait(server.as_fd(), SLOTS).unwrap(), 3);
        let mut tx = Outgoing::new(512);
        for (i, client) in clients.iter().enumerate() {
            let (bytes, src) = rx.get(i).unwrap();
            assert_eq!(bytes, &[i as u8; 5]);
            assert_eq!(src, client.local_addr().unwrap());
            let out = tx.next_buffer().unwrap();
            out.clear();
            out.extend_from_slice(&[bytes[0] + 10; 7]);
            tx.push(src);
        }
        assert!(rx.get(3).is_none());
        assert_eq!(tx.send(server.as_fd(), 0).unwrap(), 3);
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 64];
            c.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i as u8 + 10; 7]);
        }
    }

    #[test]
    fn a_full_batch_takes_no_more() {
        let mut tx = Outgoing::new(16);
        let to: SocketAddr = "[2001:db8::1]:53".parse().unwrap();
        for _ in 0..SLOTS {
            tx.next_buffer().unwrap().push(1);
            tx.push(to);
        }
        assert!(tx.next_buffer().is_none());
        tx.push(to);
        assert_eq!(tx.len(), SLOTS);
        assert_eq!(tx.get(0).unwrap().1, to);
    }
}
