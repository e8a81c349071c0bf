//! Placeholder until this protocol's request is written: sends the generic datagram.

use super::{Nonce, ProbeContext, Reply, UdpRequest, generic};

/// Placeholder request.
#[derive(Debug)]
pub struct Request(generic::Request);

impl Request {
    /// Placeholder constructor.
    pub fn new(ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request(generic::Request::new(ctx, nonce))
    }
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        self.0.datagrams()
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        self.0.recognise(reply)
    }
}
