//! One exec or attach session over WebSocket: local stdin to channel 0,
//! channels 1 and 2 to local stdout and stderr, the terminal size on
//! channel 4, and the exit status from channel 3.

use crate::error::CtlError;
use crate::stream_protocol::{self, RemoteExit};
use crate::terminal::{self, RawMode};
use client::ClientError;
use futures::{SinkExt, StreamExt};
use std::io::{Read, Write};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

/// What to connect and which streams to carry.
pub struct SessionRequest {
    /// The `http://` URL of `.../exec?...` or `.../attach?...`.
    pub url: String,
    /// Forward local stdin.
    pub stdin: bool,
    /// The remote side has a TTY: put the local terminal in raw mode and
    /// keep the remote window size in step.
    pub tty: bool,
}

/// How often kubectl pings so idle sessions stay open.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// Run the session until the remote side reports its status or closes.
pub async fn run_session(req: SessionRequest, api_base: &str) -> Result<RemoteExit, CtlError> {
    let ws_url = req
        .url
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| CtlError::msg(format!("invalid stream URL {ws_url}: {e}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        stream_protocol::SUBPROTOCOL
            .parse()
            .expect("a constant header value"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| connect_error(e, api_base))?;
    let (mut sink, mut stream) = ws.split();

    // Raw mode only when the remote side has a TTY and we have a terminal.
    let _raw = if req.tty { RawMode::enter() } else { None };
    if req.tty {
        if let Some((w, h)) = terminal::window_size() {
            send(&mut sink, stream_protocol::resize(w, h)).await?;
        }
    }
    let mut winch = signal(SignalKind::window_change()).ok();
    let mut input = req.stdin.then(spawn_stdin_reader);
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;

    let mut status: Option<RemoteExit> = None;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { break };
                match msg {
                    Ok(Message::Binary(data)) => match stream_protocol::decode(&data) {
                        Some((stream_protocol::STDOUT, out)) => write_out(&mut std::io::stdout(), out),
                        Some((stream_protocol::STDERR, out)) => write_out(&mut std::io::stderr(), out),
                        Some((stream_protocol::STATUS, payload)) => status = Some(stream_protocol::parse_status(payload)),
                        _ => {}
                    },
                    Ok(Message::Close(_)) => break,
                    Ok(_) => {}
                    Err(tungstenite::Error::ConnectionClosed) => break,
                    // Once the status is in, how the connection ends does not matter.
                    Err(_) if status.is_some() => break,
                    Err(e) => return Err(CtlError::msg(format!("error reading from the remote stream: {e}"))),
                }
            }
            chunk = recv_input(&mut input) => match chunk {
                Some(bytes) => send(&mut sink, stream_protocol::encode(stream_protocol::STDIN, &bytes)).await?,
                None => {
                    // End of local input: close the remote stdin, keep reading output.
                    input = None;
                    send(&mut sink, stream_protocol::close_stdin()).await?;
                }
            },
            Some(()) = recv_signal(&mut winch) => {
                if req.tty {
                    if let Some((w, h)) = terminal::window_size() {
                        send(&mut sink, stream_protocol::resize(w, h)).await?;
                    }
                }
            }
            _ = ping.tick() => {
                let _ = sink.send(Message::Ping(Vec::new().into())).await;
            }
        }
    }
    let _ = sink.close().await;
    // No status at all: the stream simply ended, which v5 treats as success.
    Ok(status.unwrap_or(RemoteExit::Success))
}

type Sink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

async fn send(sink: &mut Sink, frame: Vec<u8>) -> Result<(), CtlError> {
    sink.send(Message::Binary(frame.into()))
        .await
        .map_err(|e| CtlError::msg(format!("error writing to the remote stream: {e}")))
}

fn write_out(w: &mut dyn Write, data: &[u8]) {
    let _ = w.write_all(data);
    let _ = w.flush();
}

/// Stdin is read on a plain thread: a blocked read cannot be cancelled, and
/// on tokio's blocking pool it would hold up the runtime's shutdown.
fn spawn_stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break, // dropping tx signals end of input
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// The next chunk of input; pends forever once there is no input.
async fn recv_input(input: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_signal(sig: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// A refused upgrade carries the server's `Status` (pod not found,
/// container not running); a refused connection means no server.
fn connect_error(e: tungstenite::Error, api_base: &str) -> CtlError {
    match e {
        tungstenite::Error::Http(resp) => {
            let code = resp.status().as_u16();
            let body = resp.body().clone().unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
            });
            let reason = json["reason"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    resp.status()
                        .canonical_reason()
                        .unwrap_or("")
                        .replace(' ', "")
                });
            let message = json["message"]
                .as_str()
                .map(str::to_string)
                .or_else(|| json.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("the server responded with the status code {code}"));
            CtlError::from(ClientError::Status {
                code,
                reason,
                message,
                body: json,
            })
        }
        tungstenite::Error::Io(io) => CtlError::Unreachable {
            url: api_base.to_string(),
            detail: if io.kind() == std::io::ErrorKind::ConnectionRefused {
                "connection refused".into()
            } else {
                io.to_string()
            },
        },
        other => CtlError::msg(format!("unable to upgrade connection: {other}")),
    }
}
