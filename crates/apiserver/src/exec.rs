//! `pods/<name>/exec` and `pods/<name>/attach` over WebSocket
//! (`v5.channel.k8s.io`, also `v4`): binary frames whose first byte is the
//! channel, bridged to a pod runner `Session`.

use crate::error::ApiError;
use crate::logs::{check_container, podio_status};
use crate::read::load;
use crate::resources::RequestContext;
use crate::server::ApiServer;
use api::status::StatusError;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use podio::{ContainerRef, Output, Session, StreamOptions};
use serde_json::{json, Value};
use std::sync::Arc;

/// The subprotocols served, preferred first.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// Check the request, then upgrade; the session starts once the client
/// is connected, so a refused upgrade runs nothing.
pub async fn stream(
    ctx: RequestContext,
    parts: &mut Parts,
    attach: bool,
) -> Result<Response, ApiError> {
    let pod = load(&ctx, ctx.name()).await?;
    let name = ctx.name().to_string();
    let container = ctx.query.non_empty("container").map(str::to_string);
    check_container(&pod, container.as_deref())?;
    if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
        return Err(
            StatusError::bad_request(format!("pod {name} does not have a host assigned")).into(),
        );
    }
    let command = ctx.query.all("command");
    if !attach && command.is_empty() {
        return Err(StatusError::bad_request("you must specify at least 1 command").into());
    }
    let options = StreamOptions {
        command,
        stdin: ctx.query.flag("stdin"),
        stdout: ctx.query.flag("stdout"),
        stderr: ctx.query.flag("stderr"),
        tty: ctx.query.flag("tty"),
    };
    let target = ContainerRef {
        namespace: ctx.namespace().unwrap_or("default").to_string(),
        pod: name,
        container,
    };
    let upgrade = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|_| StatusError::bad_request("Upgrade request required"))?;
    let server = ctx.server.clone();
    Ok(upgrade
        .protocols(PROTOCOLS)
        .on_upgrade(move |socket| bridge(socket, server, target, options, attach))
        .into_response())
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(channel);
    b.put_slice(data);
    Message::Binary(b.freeze())
}

/// The channel-3 status for an exit code.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

fn failure_status(e: &StatusError) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": e.message,
        "reason": e.reason,
        "code": e.code,
    })
}

async fn bridge(
    socket: WebSocket,
    server: Arc<ApiServer>,
    target: ContainerRef,
    options: StreamOptions,
    attach: bool,
) {
    let (mut sink, mut incoming) = socket.split();
    let started = if attach {
        server.podio.attach(target, options).await
    } else {
        server.podio.exec(target, options).await
    };
    let Session {
        stdin,
        mut output,
        resize,
        exit,
    } = match started {
        Ok(session) => session,
        Err(e) => {
            let status = failure_status(&podio_status(e));
            let _ = sink
                .send(frame(STATUS, status.to_string().as_bytes()))
                .await;
            let _ = sink.send(close_normal()).await;
            return;
        }
    };
    // Client frames: stdin, resize and stdin-close. Ping frames are
    // answered by the WebSocket layer itself while this loop reads.
    let mut reader = tokio::spawn(async move {
        let mut stdin = stdin;
        while let Some(Ok(message)) = incoming.next().await {
            let data: Bytes = match message {
                Message::Binary(data) => data,
                Message::Close(_) => break,
                _ => continue,
            };
            match data.first() {
                Some(&STDIN) => {
                    if let Some(tx) = &stdin {
                        if tx.send(data.slice(1..)).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Some(&RESIZE) => {
                    if let (Some(tx), Ok(size)) =
                        (&resize, serde_json::from_slice::<Value>(&data[1..]))
                    {
                        let width = size["Width"].as_u64().unwrap_or(0) as u16;
                        let height = size["Height"].as_u64().unwrap_or(0) as u16;
                        let _ = tx.send((width, height)).await;
                    }
                }
                // `[255, 0]`: the client closed its stdin.
                Some(&CLOSE) if data.get(1) == Some(&STDIN) => stdin = None,
                _ => {}
            }
        }
    });
    let done = server.streams_done.clone();
    loop {
        tokio::select! {
            out = output.recv() => {
                let message = match out {
                    Some(Output::Stdout(b)) => frame(STDOUT, &b),
                    Some(Output::Stderr(b)) => frame(STDERR, &b),
                    None => break,
                };
                if sink.send(message).await.is_err() {
                    reader.abort();
                    return;
                }
            }
            // The client left: for attach that is a detach; either way
            // nobody reads the rest, and dropping the session ends it.
            _ = &mut reader => return,
            _ = done.cancelled() => {
                reader.abort();
                return;
            }
        }
    }
    reader.abort();
    let status = match exit.await {
        Ok(code) => exit_status(code),
        Err(_) => failure_status(&StatusError::internal(
            "the session ended without an exit code",
        )),
    };
    let _ = sink
        .send(frame(STATUS, status.to_string().as_bytes()))
        .await;
    let _ = sink.send(close_normal()).await;
}

fn close_normal() -> Message {
    Message::Close(Some(CloseFrame {
        code: 1000,
        reason: "".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status(0), json!({"metadata": {}, "status": "Success"}));
        let f = exit_status(3);
        assert_eq!(f["reason"], "NonZeroExitCode");
        assert_eq!(
            f["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
    }
}
