//! At most `server.max_connections_per_address` open connections per
//! client address.
//!
//! One address that opens connections and never finishes a request
//! exhausted the process' file descriptors; with a cap per address it
//! exhausts only its own share. The count is taken when actix accepts a
//! connection (`HttpServer::on_connect`): a connection over the cap is shut
//! down on the spot, before a byte of it is read, and counted in
//! `tgvisor_http_connections_refused_total`. Its place is given back when
//! the connection closes (the slot lives in the connection's extensions).
//! Connections from a trusted proxy are not counted: one proxy carries
//! many clients.

use actix_web::dev::Extensions;
use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The open connections per address.
#[derive(Clone)]
pub struct ConnectionLimits {
    inner: Arc<Inner>,
}

struct Inner {
    per_address: usize,
    trusted: Vec<IpAddr>,
    open: Mutex<HashMap<IpAddr, usize>>,
    refused: prometheus::IntCounter,
}

/// One connection's place in the count; given back when dropped.
struct Slot {
    inner: Arc<Inner>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    pub fn new(per_address: usize, trusted: Vec<IpAddr>, refused: prometheus::IntCounter) -> Self {
        Self {
            inner: Arc::new(Inner {
                per_address: per_address.max(1),
                trusted: trusted.iter().map(IpAddr::to_canonical).collect(),
                open: Mutex::default(),
                refused,
            }),
        }
    }

    /// Takes a place for a connection from `ip`, or `None` when the address
    /// holds its share already.
    fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_default();
        if *n >= self.inner.per_address {
            return None;
        }
        *n += 1;
        Some(Slot {
            inner: self.inner.clone(),
            ip,
        })
    }

    /// Connections open from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    /// For `HttpServer::on_connect`: counts the connection, or shuts it
    /// down when its address is over the cap.
    pub fn on_connect(&self, conn: &dyn Any, ext: &mut Extensions) {
        let Some(stream) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
        let ip = peer.ip().to_canonical();
        if self.inner.trusted.contains(&ip) {
            return;
        }
        match self.admit(ip) {
            Some(slot) => {
                ext.insert(slot);
            }
            None => {
                self.inner.refused.inc();
                // The dispatcher reads end-of-stream and drops the
                // connection; the client sees it closed.
                let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_places_back() {
        let limits =
            ConnectionLimits::new(2, vec![], prometheus::IntCounter::new("x", "x").unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        let first = limits.admit(a).unwrap();
        let _second = limits.admit(a).unwrap();
        assert!(limits.admit(a).is_none());
        assert!(
            limits.admit(b).is_some(),
            "another address has its own share"
        );
        drop(first);
        assert_eq!(limits.open_from(a), 1);
        assert!(limits.admit(a).is_some());
    }
}
