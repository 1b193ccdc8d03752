//! The `v5.channel.k8s.io` WebSocket protocol of exec and attach: every
//! binary message starts with its channel byte. Pure encoding and decoding;
//! the session that moves bytes lives in `remote_session`.

use serde_json::Value;

/// The subprotocol minik8s (and kubectl 1.35) speak.
pub const SUBPROTOCOL: &str = "v5.channel.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// A `Status` object: how the remote command ended.
pub const STATUS: u8 = 3;
/// Terminal size changes, `{"Width":w,"Height":h}`.
pub const RESIZE: u8 = 4;
/// v5: `[255, channel]` closes one direction of a channel.
pub const CLOSE: u8 = 255;

/// A message on `channel` carrying `data`.
pub fn encode(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(data.len() + 1);
    msg.push(channel);
    msg.extend_from_slice(data);
    msg
}

/// Tell the remote side that stdin reached end of file.
pub fn close_stdin() -> Vec<u8> {
    vec![CLOSE, STDIN]
}

pub fn resize(width: u16, height: u16) -> Vec<u8> {
    encode(
        RESIZE,
        format!("{{\"Width\":{width},\"Height\":{height}}}").as_bytes(),
    )
}

/// Split a received message into channel and payload (`None` if empty).
pub fn decode(msg: &[u8]) -> Option<(u8, &[u8])> {
    msg.split_first().map(|(c, rest)| (*c, rest))
}

/// How the remote command ended, read from the status channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteExit {
    Success,
    /// `NonZeroExitCode` with an `ExitCode` cause.
    Code(i32),
    /// Any other failure, with the server's message.
    Failure(String),
}

/// client-go's `errorDecoderV4`.
pub fn parse_status(payload: &[u8]) -> RemoteExit {
    let Ok(status) = serde_json::from_slice::<Value>(payload) else {
        return RemoteExit::Failure(format!(
            "error stream protocol error: {}",
            String::from_utf8_lossy(payload)
        ));
    };
    match status["status"].as_str() {
        Some("Success") => RemoteExit::Success,
        Some("Failure") if status["reason"] == "NonZeroExitCode" => {
            let code = status["details"]["causes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["reason"] == "ExitCode")
                .and_then(|c| c["message"].as_str())
                .and_then(|m| m.parse::<u8>().ok());
            match code {
                Some(c) => RemoteExit::Code(i32::from(c)),
                None => RemoteExit::Failure(
                    "error stream protocol error: no ExitCode cause given".into(),
                ),
            }
        }
        Some("Failure") => {
            RemoteExit::Failure(status["message"].as_str().unwrap_or_default().to_string())
        }
        _ => RemoteExit::Failure("error stream protocol error: unknown error".into()),
    }
}

/// The query of an exec (`command` given) or attach (`command` empty)
/// request, in kubectl's parameter order.
pub fn stream_query(
    command: &[String],
    container: &str,
    stdin: bool,
    tty: bool,
) -> Vec<(&'static str, String)> {
    let mut q: Vec<(&'static str, String)> =
        command.iter().map(|c| ("command", c.clone())).collect();
    q.push(("container", container.to_string()));
    if stdin {
        q.push(("stdin", "true".into()));
    }
    q.push(("stdout", "true".into()));
    // With a TTY the remote side merges stderr into the terminal.
    if !tty {
        q.push(("stderr", "true".into()));
    }
    if tty {
        q.push(("tty", "true".into()));
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_channel_first() {
        assert_eq!(encode(STDIN, b"ls\n"), b"\x00ls\n");
        assert_eq!(decode(b"\x01hello"), Some((STDOUT, &b"hello"[..])));
        assert_eq!(decode(b""), None);
        assert_eq!(close_stdin(), vec![255, 0]);
        assert_eq!(resize(80, 24), b"\x04{\"Width\":80,\"Height\":24}");
    }

    #[test]
    fn status_gives_the_exit_code() {
        assert_eq!(
            parse_status(br#"{"metadata":{},"status":"Success"}"#),
            RemoteExit::Success
        );
        let failed = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(parse_status(failed), RemoteExit::Code(3));
        let other = br#"{"status":"Failure","message":"container not found (\"x\")"}"#;
        assert_eq!(
            parse_status(other),
            RemoteExit::Failure("container not found (\"x\")".into())
        );
    }

    #[test]
    fn query_lists_each_command_word() {
        let q = stream_query(
            &["sh".into(), "-c".into(), "echo hi".into()],
            "c",
            true,
            false,
        );
        let keys: Vec<_> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            keys,
            [
                "command=sh",
                "command=-c",
                "command=echo hi",
                "container=c",
                "stdin=true",
                "stdout=true",
                "stderr=true"
            ]
        );
        let tty = stream_query(&[], "tmp", true, true);
        assert!(tty.contains(&("tty", "true".into())));
        assert!(!tty.iter().any(|(k, _)| *k == "stderr"));
    }
}
