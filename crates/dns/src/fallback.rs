//! The full hickory-based answer for a UDP packet the fast path did not
//! take (forwarded names, CNAME chasing, EDNS options, truncation, odd
//! messages): decoded by hickory, answered by `ClusterDnsHandler`, sent
//! from the socket the question came in on. Does what hickory's own UDP
//! server does with a packet, minus the socket loop.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::proto::op::{
    Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::Record;
use hickory_server::proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder,
};
use hickory_server::proto::ProtoError;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use nix::sys::socket::{sendto, MsgFlags, SockaddrStorage};
use tokio::sync::Semaphore;

use crate::handler::ClusterDnsHandler;

/// Questions answered by the full handler at once at most; more are
/// dropped (the client asks again), so a flood of forwarded names cannot
/// pile up tasks without bound.
const MAX_IN_FLIGHT: usize = 1024;

/// Hands packets to the full handler on the runtime.
#[derive(Clone)]
pub struct Fallback {
    handler: Arc<ClusterDnsHandler>,
    runtime: tokio::runtime::Handle,
    in_flight: Arc<Semaphore>,
}

impl Fallback {
    pub fn new(handler: ClusterDnsHandler, runtime: tokio::runtime::Handle) -> Fallback {
        Fallback {
            handler: Arc::new(handler),
            runtime,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Answer `packet` from `src` in a task; the reply leaves by `socket`.
    pub fn dispatch(&self, packet: Vec<u8>, src: SocketAddr, socket: &Arc<UdpSocket>) {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::debug!(%src, "too many DNS questions in the full handler; dropped one");
            return;
        };
        let handler = self.handler.clone();
        let reply = UdpReply {
            socket: socket.clone(),
            dst: src,
        };
        self.runtime.spawn(async move {
            answer_with(&handler, packet, src, reply).await;
            drop(permit);
        });
    }
}

/// Decode `packet` as hickory's server does and let `handler` answer
/// through `reply`: nothing for non-queries, FORMERR for undecodable ones.
pub async fn answer_with<R: ResponseHandler>(
    handler: &ClusterDnsHandler,
    packet: Vec<u8>,
    src: SocketAddr,
    mut reply: R,
) {
    // No answer can reach port 0 (hickory drops these too).
    if src.port() == 0 {
        return;
    }
    let Ok(header) = Header::read(&mut BinDecoder::new(&packet)) else {
        return;
    };
    let request = match Request::from_bytes(packet, src, Protocol::Udp) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%src, %error, "undecodable DNS question");
            let Ok(queries) = Queries::read(&mut BinDecoder::new(&[]), 0) else {
                return;
            };
            let response = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            let _ = reply.send_response(response).await;
            return;
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return;
    }
    handler
        .handle_request::<_, TokioTime>(&request, reply)
        .await;
}

/// Encode a response for UDP the way hickory's server does: within the
/// client's EDNS payload size (512 bytes without EDNS), truncated (TC)
/// beyond it; SERVFAIL when it cannot be encoded at all.
pub fn encode_udp<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> Result<(ResponseInfo, Vec<u8>), ProtoError> {
    let id = response.metadata().id;
    let max = response.edns().map(|e| e.max_payload()).unwrap_or(512);
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max);
    let error = match response.destructive_emit(&mut encoder) {
        Ok(info) => return Ok((info, bytes)),
        Err(error) => error,
    };
    tracing::debug!(%error, "cannot encode DNS response");
    bytes.clear();
    let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    header.emit(&mut BinEncoder::new(&mut bytes))?;
    Ok((ResponseInfo::from(header), bytes))
}

/// Sends a response to one client from a shared UDP socket.
#[derive(Clone)]
pub struct UdpReply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = encode_udp(response)?;
        // The socket blocks for its reading thread; a reply must never
        // stall the runtime, so a full send buffer drops it (UDP may).
        sendto(
            self.socket.as_raw_fd(),
            &bytes,
            &SockaddrStorage::from(self.dst),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(|e| NetError::from(format!("cannot send DNS answer to {}: {e}", self.dst)))?;
        Ok(info)
    }
}
