//! One `-A` line's arguments, read into what it matches and where it
//! goes. Only the options minik8s' planner writes are understood; anything
//! else is an error, and the caller hands the whole transaction to
//! `iptables-restore` instead. Pure.

use std::net::Ipv4Addr;

/// A rule, as iptables would store it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule<'a> {
    /// `-p`: IP protocol number, 0 for none.
    pub proto: u8,
    /// `[!] -s`
    pub source: Option<Prefix>,
    /// `[!] -d`
    pub destination: Option<Prefix>,
    /// `-m` matches, in the order written.
    pub matches: Vec<Match<'a>>,
    pub target: Target<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
    pub negated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match<'a> {
    Comment(&'a str),
    /// `-m tcp|udp [--dport N]` (the protocol is the rule's `-p`).
    Ports {
        dport: Option<u16>,
    },
    /// `-m statistic --mode random --probability P`, P scaled to 2^31.
    Probability(u32),
    /// `-m recent --name N --rcheck --seconds S --reap`
    RecentCheck {
        name: &'a str,
        seconds: u32,
    },
    /// `-m recent --name N --set`
    RecentSet {
        name: &'a str,
    },
    /// `-m addrtype --dst-type LOCAL`
    DestinationLocal,
    /// `-m conntrack --ctstate A,B`: xt_conntrack's state bits.
    ConntrackState(u16),
    /// `-m mark [!] --mark VALUE/MASK`
    Mark {
        value: u32,
        mask: u32,
        negated: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Jump(&'a str),
    Accept,
    Drop,
    Return,
    /// `-j MARK --or-mark` / `--xor-mark`: (mark, mask) as xt_MARK keeps them.
    Mark {
        mark: u32,
        mask: u32,
    },
    /// `-j MASQUERADE [--random-fully]`
    Masquerade {
        random_fully: bool,
    },
    /// `-j DNAT --to-destination IP:PORT`
    Dnat {
        addr: Ipv4Addr,
        port: u16,
    },
    /// `-j REJECT --reject-with icmp-port-unreachable`
    RejectPortUnreachable,
}

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// xt_conntrack's state bits (XT_CONNTRACK_STATE_BIT).
const CT_INVALID: u16 = 1;
const CT_ESTABLISHED: u16 = 1 << 1;
const CT_RELATED: u16 = 1 << 2;
const CT_NEW: u16 = 1 << 3;

/// Splits a rule into words; a double-quoted word may hold spaces.
pub fn words(line: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| format!("unterminated quote in {line:?}"))?;
            out.push(&quoted[..end]);
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
    }
    Ok(out)
}

/// Reads a rule's arguments (without `-A CHAIN`).
pub fn parse_rule(args: &str) -> Result<Rule<'_>, String> {
    let words = words(args)?;
    let mut it = words.into_iter().peekable();
    let mut rule = Rule {
        proto: 0,
        source: None,
        destination: None,
        matches: Vec::new(),
        target: Target::Return,
    };
    let mut target = None;
    let mut negate = false;
    while let Some(w) = it.next() {
        match w {
            "!" => {
                negate = true;
                continue;
            }
            "-p" => {
                rule.proto = match next_value(&mut it, w, args)? {
                    "tcp" => IPPROTO_TCP,
                    "udp" => IPPROTO_UDP,
                    other => return Err(format!("protocol {other} is not supported")),
                }
            }
            "-s" | "-d" => {
                let mut p = prefix(next_value(&mut it, w, args)?)?;
                p.negated = negate;
                if w == "-s" {
                    rule.source = Some(p);
                } else {
                    rule.destination = Some(p);
                }
            }
            "-m" => {
                let module = next_value(&mut it, w, args)?;
                rule.matches.push(parse_match(module, &mut it, rule.proto)?);
            }
            "-j" => {
                // The target takes every word left: options after it are
                // refused there.
                target = Some(parse_target(next_value(&mut it, w, args)?, &mut it)?);
            }
            other => return Err(format!("option {other} is not supported")),
        }
        if negate && !matches!(w, "-s" | "-d") {
            return Err(format!("! before {w} is not supported"));
        }
        negate = false;
    }
    rule.target = target.ok_or_else(|| format!("no target in {args:?}"))?;
    Ok(rule)
}

fn next_value<'a>(it: &mut Words<'a>, opt: &str, args: &str) -> Result<&'a str, String> {
    it.next()
        .ok_or_else(|| format!("{opt} needs a value in {args:?}"))
}

fn prefix(s: &str) -> Result<Prefix, String> {
    let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
    let addr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| (1..=32).contains(l))
        .ok_or_else(|| format!("{s:?} has a prefix length out of 1-32"))?;
    Ok(Prefix {
        addr,
        len,
        negated: false,
    })
}

type Words<'a> = std::iter::Peekable<std::vec::IntoIter<&'a str>>;

/// The options of one `-m` module, up to the next `-m`/`-j`/`-p`/...
fn options<'a>(it: &mut Words<'a>) -> Vec<&'a str> {
    let mut out = Vec::new();
    while let Some(w) = it.peek() {
        if matches!(*w, "-m" | "-j" | "-p" | "-s" | "-d") {
            break;
        }
        // `!` before a module's own option belongs to the module.
        out.push(it.next().expect("peeked"));
    }
    out
}

fn parse_match<'a>(module: &str, it: &mut Words<'a>, proto: u8) -> Result<Match<'a>, String> {
    let opts = options(it);
    let bad = || format!("-m {module} {} is not supported", opts.join(" "));
    match (module, opts.as_slice()) {
        ("comment", ["--comment", text]) => {
            if text.len() > 255 {
                return Err(format!("comment longer than 255 bytes: {text:?}"));
            }
            Ok(Match::Comment(text))
        }
        ("tcp", _) if proto != IPPROTO_TCP => Err("-m tcp without -p tcp".into()),
        ("udp", _) if proto != IPPROTO_UDP => Err("-m udp without -p udp".into()),
        ("tcp" | "udp", []) => Ok(Match::Ports { dport: None }),
        ("tcp" | "udp", ["--dport", port]) => Ok(Match::Ports {
            dport: Some(port.parse().map_err(|_| bad())?),
        }),
        ("statistic", ["--mode", "random", "--probability", p]) => {
            let p: f64 = p.parse().map_err(|_| bad())?;
            if !(0.0..=1.0).contains(&p) {
                return Err(bad());
            }
            // As iptables' libxt_statistic: lround(0x80000000 * p).
            Ok(Match::Probability((p * 2147483648.0).round() as u32))
        }
        ("recent", ["--name", name, "--rcheck", "--seconds", s, "--reap"]) => {
            Ok(Match::RecentCheck {
                name: recent_name(name)?,
                seconds: s.parse().map_err(|_| bad())?,
            })
        }
        ("recent", ["--name", name, "--set"]) => Ok(Match::RecentSet {
            name: recent_name(name)?,
        }),
        ("addrtype", ["--dst-type", "LOCAL"]) => Ok(Match::DestinationLocal),
        ("conntrack", ["--ctstate", states]) => {
            let mut bits = 0;
            for s in states.split(',') {
                bits |= match s {
                    "INVALID" => CT_INVALID,
                    "ESTABLISHED" => CT_ESTABLISHED,
                    "RELATED" => CT_RELATED,
                    "NEW" => CT_NEW,
                    _ => return Err(bad()),
                };
            }
            Ok(Match::ConntrackState(bits))
        }
        ("mark", ["--mark", mark]) | ("mark", ["!", "--mark", mark]) => {
            let (value, mask) = mark.split_once('/').unwrap_or((mark, "0xffffffff"));
            Ok(Match::Mark {
                value: hex(value).ok_or_else(bad)?,
                mask: hex(mask).ok_or_else(bad)?,
                negated: opts[0] == "!",
            })
        }
        _ => Err(bad()),
    }
}

fn recent_name(name: &str) -> Result<&str, String> {
    if name.len() < 200 {
        Ok(name)
    } else {
        Err(format!("recent list name too long: {name}"))
    }
}

fn hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

fn parse_target<'a>(name: &'a str, it: &mut Words<'a>) -> Result<Target<'a>, String> {
    let opts: Vec<&str> = it.collect();
    let bad = || format!("-j {name} {} is not supported", opts.join(" "));
    Ok(match (name, opts.as_slice()) {
        ("ACCEPT", []) => Target::Accept,
        ("DROP", []) => Target::Drop,
        ("RETURN", []) => Target::Return,
        ("MARK", ["--or-mark", m]) => {
            let m = hex(m).ok_or_else(bad)?;
            Target::Mark { mark: m, mask: m }
        }
        ("MARK", ["--xor-mark", m]) => Target::Mark {
            mark: hex(m).ok_or_else(bad)?,
            mask: 0,
        },
        ("MASQUERADE", []) => Target::Masquerade {
            random_fully: false,
        },
        ("MASQUERADE", ["--random-fully"]) => Target::Masquerade { random_fully: true },
        ("DNAT", ["--to-destination", to]) => {
            let (addr, port) = to.split_once(':').ok_or_else(bad)?;
            Target::Dnat {
                addr: addr.parse().map_err(|_| bad())?,
                port: port.parse().map_err(|_| bad())?,
            }
        }
        ("REJECT", ["--reject-with", "icmp-port-unreachable"]) => Target::RejectPortUnreachable,
        (chain, []) if chain.starts_with("KUBE-") => Target::Jump(chain),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cluster_ip_rule() {
        let r = parse_rule("! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment \"kube-system/kube-dns:dns-tcp cluster IP\" -m tcp --dport 53 -j KUBE-MARK-MASQ").unwrap();
        assert_eq!(r.proto, IPPROTO_TCP);
        assert_eq!(
            r.source,
            Some(Prefix {
                addr: "10.244.0.0".parse().unwrap(),
                len: 16,
                negated: true
            })
        );
        assert!(!r.destination.as_ref().unwrap().negated);
        assert_eq!(
            r.matches,
            [
                Match::Comment("kube-system/kube-dns:dns-tcp cluster IP"),
                Match::Ports { dport: Some(53) }
            ]
        );
        assert_eq!(r.target, Target::Jump("KUBE-MARK-MASQ"));
    }

    #[test]
    fn reads_endpoint_rules() {
        let r = parse_rule("-m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-ABC")
            .unwrap();
        assert_eq!(r.matches, [Match::Probability(0x2aaa_aaab)]);
        let r = parse_rule("-p udp -m recent --name KUBE-SEP-A --set -m udp -j DNAT --to-destination 10.244.0.2:53").unwrap();
        assert_eq!(r.proto, IPPROTO_UDP);
        assert_eq!(
            r.matches,
            [
                Match::RecentSet { name: "KUBE-SEP-A" },
                Match::Ports { dport: None }
            ]
        );
        assert_eq!(
            r.target,
            Target::Dnat {
                addr: "10.244.0.2".parse().unwrap(),
                port: 53
            }
        );
        let r = parse_rule("-m mark ! --mark 0x4000/0x4000 -j RETURN").unwrap();
        assert_eq!(
            r.matches,
            [Match::Mark {
                value: 0x4000,
                mask: 0x4000,
                negated: true
            }]
        );
        let r = parse_rule("-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT").unwrap();
        assert_eq!(r.matches, [Match::ConntrackState(6)]);
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            "-p sctp -m sctp --dport 80 -j KUBE-SVC-X",
            "-i eth0 -j ACCEPT",
            "-m tcp --dport 80 -j ACCEPT",
            "-j LOG",
            "-m comment --comment \"unterminated -j ACCEPT",
            "-d 10.0.0.1/33 -j ACCEPT",
            "! -p tcp -j ACCEPT",
            "-m comment --comment x",
            "-j ACCEPT -m comment --comment x",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad} was accepted");
        }
    }
}
