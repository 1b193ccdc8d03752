//! Pod logs and exec/attach over WebSocket, against a fake pod runner.

use super::TestServer;
use axum::http::StatusCode;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use podio::{ContainerRef, LogOptions, Output, PodIo, PodIoError, Session, StreamOptions};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use store::StoreConfig;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Logs three numbered lines; exec echoes stdin to stdout upper-cased,
/// writes `err` to stderr and exits with the number its command names.
#[derive(Default)]
struct FakePodIo {
    last_log_options: Mutex<Option<(ContainerRef, LogOptions)>>,
}

impl PodIo for FakePodIo {
    fn logs(
        &self,
        target: ContainerRef,
        options: LogOptions,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Bytes>, PodIoError>> {
        *self.last_log_options.lock().unwrap() = Some((target, options.clone()));
        Box::pin(async move {
            let lines: Vec<Bytes> = (1..=3)
                .map(|i| Bytes::from(format!("line {i}\n")))
                .collect();
            let skip = options
                .tail_lines
                .map(|n| 3usize.saturating_sub(n as usize))
                .unwrap_or(0);
            Ok(futures::stream::iter(lines.into_iter().skip(skip)).boxed())
        })
    }

    fn exec(
        &self,
        _target: ContainerRef,
        options: StreamOptions,
    ) -> BoxFuture<'static, Result<Session, PodIoError>> {
        Box::pin(async move {
            let code: i32 = options
                .command
                .first()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let (stdin_tx, mut stdin_rx) = mpsc::channel::<Bytes>(8);
            let (out_tx, out_rx) = mpsc::channel(8);
            let (exit_tx, exit_rx) = oneshot::channel();
            tokio::spawn(async move {
                let _ = out_tx
                    .send(Output::Stderr(Bytes::from_static(b"err")))
                    .await;
                while let Some(data) = stdin_rx.recv().await {
                    let upper = Bytes::from(data.to_ascii_uppercase());
                    let _ = out_tx.send(Output::Stdout(upper)).await;
                }
                drop(out_tx);
                let _ = exit_tx.send(code);
            });
            Ok(Session {
                stdin: Some(stdin_tx),
                output: out_rx,
                resize: None,
                exit: exit_rx,
            })
        })
    }

    fn attach(
        &self,
        target: ContainerRef,
        _options: StreamOptions,
    ) -> BoxFuture<'static, Result<Session, PodIoError>> {
        Box::pin(async move {
            Err(PodIoError::BadRequest(format!(
                "container in pod \"{}\" is waiting to start: ContainerCreating",
                target.pod
            )))
        })
    }
}

async fn with_pod(podio: Arc<FakePodIo>) -> TestServer {
    let t = TestServer::with(StoreConfig::default(), podio).await;
    let pod = r#"{"metadata":{"name":"p"},"spec":{"nodeName":"minik8s-node","containers":[{"name":"c","image":"nginx"}]}}"#;
    assert_eq!(
        t.post("/api/v1/namespaces/default/pods", pod).await.status,
        StatusCode::CREATED
    );
    t
}

#[tokio::test]
async fn logs_are_plain_text_with_options() {
    let fake = Arc::new(FakePodIo::default());
    let t = with_pod(fake.clone()).await;
    let r = t
        .get("/api/v1/namespaces/default/pods/p/log?tailLines=2&timestamps=true&container=c")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.body, "line 2\nline 3\n");
    let (target, options) = fake.last_log_options.lock().unwrap().clone().unwrap();
    assert_eq!(target.container.as_deref(), Some("c"));
    assert!(options.timestamps && !options.follow);
    let r = t
        .get("/api/v1/namespaces/default/pods/p/log?container=nope")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["message"], "container nope is not valid for pod p");
    let r = t.get("/api/v1/namespaces/default/pods/none/log").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn connect(
    addr: std::net::SocketAddr,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    socket
}

#[tokio::test]
async fn exec_over_websocket() {
    let t = with_pod(Arc::new(FakePodIo::default())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(crate::serve(listener, t.server.clone(), shutdown.clone()));

    let mut ws = connect(
        addr,
        "/api/v1/namespaces/default/pods/p/exec?command=3&stdin=true&stdout=true&stderr=true",
    )
    .await;
    ws.send(Message::binary(b"\x00hello".to_vec()))
        .await
        .unwrap();
    ws.send(Message::Ping(Bytes::from_static(b"x")))
        .await
        .unwrap();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut status: Option<Value> = None;
    let mut closed_with = None;
    let mut sent_eof = false;
    let mut ponged = false;
    while let Some(msg) = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .expect("frames within 5s")
    {
        match msg.unwrap() {
            Message::Binary(b) => match b[0] {
                1 => stdout.extend_from_slice(&b[1..]),
                2 => stderr.extend_from_slice(&b[1..]),
                3 => status = Some(serde_json::from_slice(&b[1..]).unwrap()),
                other => panic!("unexpected channel {other}"),
            },
            Message::Pong(_) => ponged = true,
            Message::Close(frame) => {
                closed_with = frame.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
        if stdout == b"HELLO" && !sent_eof {
            // v5: stdin EOF.
            ws.send(Message::binary(vec![255u8, 0])).await.unwrap();
            sent_eof = true;
        }
    }
    assert!(ponged, "ping was not answered");
    assert_eq!(stdout, b"HELLO");
    assert_eq!(stderr, b"err");
    let status = status.expect("a status frame");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    assert_eq!(closed_with, Some(1000));

    // A pod runner failure arrives on the status channel.
    let mut ws = connect(
        addr,
        "/api/v1/namespaces/default/pods/p/attach?stdin=true&stdout=true&tty=true",
    )
    .await;
    let msg = ws.next().await.unwrap().unwrap();
    let Message::Binary(b) = msg else {
        panic!("{msg:?}")
    };
    assert_eq!(b[0], 3);
    let status: Value = serde_json::from_slice(&b[1..]).unwrap();
    assert_eq!(status["status"], "Failure");
    assert!(status["message"]
        .as_str()
        .unwrap()
        .contains("ContainerCreating"));

    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn exec_refusals_are_http_errors() {
    let t = with_pod(Arc::new(FakePodIo::default())).await;
    let r = t
        .get("/api/v1/namespaces/default/pods/p/exec?command=sh")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["message"], "Upgrade request required");
    let r = t.get("/api/v1/namespaces/default/pods/p/exec").await;
    assert_eq!(r.body["message"], "you must specify at least 1 command");
    let r = t
        .get("/api/v1/namespaces/default/pods/nope/exec?command=sh")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
