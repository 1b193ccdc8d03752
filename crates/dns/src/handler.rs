//! The hickory `RequestHandler`: one question in, one answer out, from the
//! table for the cluster's names and from the upstream for the rest.

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::{DNSClass, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::forward::Forwarder;
use crate::lookup::{resolve, Resolution};
use crate::shared::SharedTable;

/// Answers from a `SharedTable`, forwards the rest.
#[derive(Clone)]
pub struct ClusterDnsHandler {
    table: Arc<SharedTable>,
    forwarder: Forwarder,
}

impl ClusterDnsHandler {
    pub fn new(table: Arc<SharedTable>, forwarder: Forwarder) -> ClusterDnsHandler {
        ClusterDnsHandler { table, forwarder }
    }
}

/// What the server reports when even the answer could not be sent.
fn failed(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

async fn send<R: ResponseHandler>(
    request: &Request,
    mut handle: R,
    edns: Option<&Edns>,
    metadata: Metadata,
    answers: &[Record],
    authority: &[Record],
    additionals: &[Record],
) -> ResponseInfo {
    let builder = MessageResponseBuilder::new(&request.queries, edns);
    let response = builder.build(
        metadata,
        answers.iter(),
        authority.iter(),
        std::iter::empty(),
        additionals.iter(),
    );
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "cannot send DNS response");
            failed(request)
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for ClusterDnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        // RA on every answer, as CoreDNS gives it: stub resolvers (nslookup)
        // complain "recursion not available" without it, and names outside
        // the zone are indeed resolved recursively (or refused by policy).
        metadata.recursion_available = true;
        // EDNS is answered with EDNS (RFC 6891), with our buffer size.
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        let error = |mut metadata: Metadata, code| {
            metadata.response_code = code;
            metadata
        };
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            let m = error(metadata, ResponseCode::BADVERS);
            return send(request, handle, edns.as_ref(), m, &[], &[], &[]).await;
        }
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            let m = error(metadata, ResponseCode::NotImp);
            return send(request, handle, edns.as_ref(), m, &[], &[], &[]).await;
        }
        let [query] = request.queries.queries() else {
            let m = error(metadata, ResponseCode::FormErr);
            return send(request, handle, edns.as_ref(), m, &[], &[], &[]).await;
        };
        if query.query_class() != DNSClass::IN {
            let m = error(metadata, ResponseCode::Refused);
            return send(request, handle, edns.as_ref(), m, &[], &[], &[]).await;
        }
        let qtype = query.query_type();
        let resolution = {
            let table = self.table.load();
            resolve(
                &table,
                query.original().name(),
                qtype,
                request.metadata.id as usize,
            )
        };
        match resolution {
            Resolution::Answer(mut answer) => {
                if let Some(target) = answer.chase.take() {
                    if !self.forwarder.refuses() {
                        match self.forwarder.ask(&target, qtype).await {
                            Ok(reply) => {
                                metadata.response_code = reply.metadata.response_code;
                                answer.answers.extend(reply.answers);
                            }
                            Err(e) => {
                                tracing::debug!(%target, error = %e, "cannot follow CNAME upstream")
                            }
                        }
                    }
                }
                metadata.authoritative = true;
                if metadata.response_code == ResponseCode::NoError {
                    metadata.response_code = answer.rcode;
                }
                send(
                    request,
                    handle,
                    edns.as_ref(),
                    metadata,
                    &answer.answers,
                    &answer.authority,
                    &[],
                )
                .await
            }
            Resolution::Forward if self.forwarder.refuses() => {
                let m = error(metadata, ResponseCode::Refused);
                send(request, handle, edns.as_ref(), m, &[], &[], &[]).await
            }
            Resolution::Forward => match self.forwarder.forward(request.as_slice()).await {
                Ok(reply) => {
                    let up = reply.metadata;
                    metadata.response_code = up.response_code;
                    metadata.authoritative = up.authoritative;
                    metadata.recursion_available = up.recursion_available;
                    metadata.authentic_data = up.authentic_data;
                    send(
                        request,
                        handle,
                        edns.as_ref(),
                        metadata,
                        &reply.answers,
                        &reply.authorities,
                        &reply.additionals,
                    )
                    .await
                }
                Err(e) => {
                    tracing::debug!(name = %query.name(), error = %e, "forwarding failed");
                    let m = error(metadata, ResponseCode::ServFail);
                    send(request, handle, edns.as_ref(), m, &[], &[], &[]).await
                }
            },
        }
    }
}
