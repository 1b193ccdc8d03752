//! A rule as nf_tables expressions, exactly as iptables-nft 1.8 encodes
//! the same `-A` line: native expressions for addresses, protocol, ports
//! and marks; xt matches and targets (the kernel's x_tables modules run
//! through nft_compat) for the rest, with their info structs laid out as
//! the kernel's uapi headers define them; a counter in every rule. So
//! `iptables-save` reads the rules back as written, and iptables-restore
//! can later rewrite any chain. Pure.

use super::batch::Attrs;
use super::rule::{Match, Prefix, Rule, Target, IPPROTO_TCP};

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;

const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_MARK: u32 = 3;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;

const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_RETURN: i32 = -5;

/// Appends the expressions of `rule` to an NFTA_RULE_EXPRESSIONS nest.
pub fn write_rule(a: &mut Attrs, rule: &Rule) {
    if rule.proto != 0 {
        meta(a, NFT_META_L4PROTO);
        cmp(a, NFT_CMP_EQ, &[rule.proto]);
    }
    // iptables' IPv4 header: saddr at 12, daddr at 16.
    if let Some(p) = &rule.source {
        address(a, 12, p);
    }
    if let Some(p) = &rule.destination {
        address(a, 16, p);
    }
    for m in &rule.matches {
        write_match(a, m, rule.proto);
    }
    expr(a, "counter", |a| {
        a.u64_be(1, 0); // NFTA_COUNTER_BYTES
        a.u64_be(2, 0); // NFTA_COUNTER_PACKETS
    });
    write_target(a, &rule.target);
}

fn expr(a: &mut Attrs, name: &str, data: impl FnOnce(&mut Attrs)) {
    a.nest(NFTA_LIST_ELEM, |a| {
        a.str(NFTA_EXPR_NAME, name);
        a.nest(NFTA_EXPR_DATA, data);
    });
}

fn meta(a: &mut Attrs, key: u32) {
    expr(a, "meta", |a| {
        a.u32_be(2, key); // NFTA_META_KEY
        a.u32_be(1, NFT_REG_1); // NFTA_META_DREG
    });
}

fn payload(a: &mut Attrs, base: u32, offset: u32, len: u32) {
    expr(a, "payload", |a| {
        a.u32_be(1, NFT_REG_1); // NFTA_PAYLOAD_DREG
        a.u32_be(2, base); // NFTA_PAYLOAD_BASE
        a.u32_be(3, offset); // NFTA_PAYLOAD_OFFSET
        a.u32_be(4, len); // NFTA_PAYLOAD_LEN
    });
}

fn cmp(a: &mut Attrs, op: u32, data: &[u8]) {
    expr(a, "cmp", |a| {
        a.u32_be(1, NFT_REG_1); // NFTA_CMP_SREG
        a.u32_be(2, op); // NFTA_CMP_OP
        a.nest(3, |a| a.bytes(1, data)); // NFTA_CMP_DATA { NFTA_DATA_VALUE }
    });
}

/// `reg1 = (reg1 & mask) ^ 0`
fn bitwise_and(a: &mut Attrs, mask: &[u8]) {
    expr(a, "bitwise", |a| {
        a.u32_be(1, NFT_REG_1); // NFTA_BITWISE_SREG
        a.u32_be(2, NFT_REG_1); // NFTA_BITWISE_DREG
        a.u32_be(3, mask.len() as u32); // NFTA_BITWISE_LEN
        a.nest(4, |a| a.bytes(1, mask)); // NFTA_BITWISE_MASK
        a.nest(5, |a| a.bytes(1, &vec![0; mask.len()])); // NFTA_BITWISE_XOR
    });
}

/// `[!] -s/-d addr/len`: a whole-byte prefix compares only its bytes; any
/// other loads the address and masks it first.
fn address(a: &mut Attrs, offset: u32, p: &Prefix) {
    let op = if p.negated { NFT_CMP_NEQ } else { NFT_CMP_EQ };
    let addr = p.addr.octets();
    if p.len.is_multiple_of(8) {
        let n = (p.len / 8) as usize;
        payload(a, NFT_PAYLOAD_NETWORK_HEADER, offset, n as u32);
        cmp(a, op, &addr[..n]);
    } else {
        let mask = (u32::MAX << (32 - p.len as u32)).to_be_bytes();
        let masked: Vec<u8> = addr.iter().zip(mask).map(|(b, m)| b & m).collect();
        payload(a, NFT_PAYLOAD_NETWORK_HEADER, offset, 4);
        bitwise_and(a, &mask);
        cmp(a, op, &masked);
    }
}

fn write_match(a: &mut Attrs, m: &Match, proto: u8) {
    match m {
        Match::Comment(text) => {
            // struct xt_comment_info { char comment[256]; }
            let mut info = [0u8; 256];
            info[..text.len()].copy_from_slice(text.as_bytes());
            xt(a, "match", "comment", 0, &info);
        }
        Match::Ports { dport: Some(port) } => {
            payload(a, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
            cmp(a, NFT_CMP_EQ, &port.to_be_bytes());
        }
        Match::Ports { dport: None } => {
            // `-m tcp` alone: struct xt_tcp / xt_udp { u16 spts[2],
            // dpts[2]; flags... } with every port, 16 bytes aligned.
            let mut info = [0u8; 16];
            info[2..4].copy_from_slice(&u16::MAX.to_ne_bytes());
            info[6..8].copy_from_slice(&u16::MAX.to_ne_bytes());
            let module = if proto == IPPROTO_TCP { "tcp" } else { "udp" };
            xt(a, "match", module, 0, &info);
        }
        Match::Probability(p) => {
            // struct xt_statistic_info { u16 mode, flags; union { random
            // { u32 probability } nth { u32 every, packet, count } } u;
            // struct xt_statistic_priv *master; }, as libxt_statistic
            // fills it (it copies the value into `count` too).
            let mut info = [0u8; 24];
            info[4..8].copy_from_slice(&p.to_ne_bytes());
            info[12..16].copy_from_slice(&p.to_ne_bytes());
            xt(a, "match", "statistic", 0, &info);
        }
        Match::RecentCheck { name, seconds } => {
            recent(a, name, *seconds, XT_RECENT_CHECK | XT_RECENT_REAP)
        }
        Match::RecentSet { name } => recent(a, name, 0, XT_RECENT_SET),
        Match::DestinationLocal => {
            // struct xt_addrtype_info_v1 { u16 source, dest; u32 flags; }
            let mut info = [0u8; 8];
            info[2..4].copy_from_slice(&XT_ADDRTYPE_LOCAL.to_ne_bytes());
            xt(a, "match", "addrtype", 1, &info);
        }
        Match::ConntrackState(states) => {
            // struct xt_conntrack_mtinfo3: 8 addresses (128 bytes), u32
            // expires_min/max, u16 l4proto, 4 ports, then u16 match_flags
            // (146), invert_flags, state_mask (150), ...; 168 bytes aligned.
            let mut info = [0u8; 168];
            info[146..148].copy_from_slice(&XT_CONNTRACK_STATE.to_ne_bytes());
            info[150..152].copy_from_slice(&states.to_ne_bytes());
            xt(a, "match", "conntrack", 3, &info);
        }
        Match::Mark {
            value,
            mask,
            negated,
        } => {
            meta(a, NFT_META_MARK);
            bitwise_and(a, &mask.to_ne_bytes());
            let op = if *negated { NFT_CMP_NEQ } else { NFT_CMP_EQ };
            cmp(a, op, &value.to_ne_bytes());
        }
    }
}

const XT_RECENT_CHECK: u8 = 1 << 0;
const XT_RECENT_SET: u8 = 1 << 1;
const XT_RECENT_REAP: u8 = 1 << 5;
const XT_ADDRTYPE_LOCAL: u16 = 1 << 2;
const XT_CONNTRACK_STATE: u16 = 1 << 0;

/// struct xt_recent_mtinfo_v1 { u32 seconds, hit_count; u8 check_set,
/// invert; char name[200]; u8 side; union nf_inet_addr mask; }: 228
/// bytes, 232 aligned; the mask is all ones (a whole address).
fn recent(a: &mut Attrs, name: &str, seconds: u32, check_set: u8) {
    let mut info = [0u8; 232];
    info[0..4].copy_from_slice(&seconds.to_ne_bytes());
    info[8] = check_set;
    info[10..10 + name.len()].copy_from_slice(name.as_bytes());
    info[212..228].fill(0xff);
    xt(a, "match", "recent", 1, &info);
}

/// An x_tables match or target: name, revision, info struct.
fn xt(a: &mut Attrs, kind: &str, name: &str, rev: u32, info: &[u8]) {
    expr(a, kind, |a| {
        a.str(1, name); // NFTA_MATCH_NAME / NFTA_TARGET_NAME
        a.u32_be(2, rev); // ..._REV
        a.bytes(3, info); // ..._INFO
    });
}

fn verdict(a: &mut Attrs, code: i32, chain: Option<&str>) {
    expr(a, "immediate", |a| {
        a.u32_be(1, NFT_REG_VERDICT); // NFTA_IMMEDIATE_DREG
        a.nest(2, |a| {
            // NFTA_IMMEDIATE_DATA { NFTA_DATA_VERDICT { CODE, CHAIN } }
            a.nest(2, |a| {
                a.u32_be(1, code as u32);
                if let Some(chain) = chain {
                    a.str(2, chain);
                }
            })
        });
    });
}

const NF_NAT_RANGE_MAP_IPS: u32 = 1 << 0;
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 1 << 1;
const NF_NAT_RANGE_PROTO_RANDOM_FULLY: u32 = 1 << 4;
const IPT_ICMP_PORT_UNREACHABLE: u32 = 3;

fn write_target(a: &mut Attrs, t: &Target) {
    match t {
        Target::Jump(chain) => verdict(a, NFT_JUMP, Some(chain)),
        Target::Accept => verdict(a, NF_ACCEPT, None),
        Target::Drop => verdict(a, NF_DROP, None),
        Target::Return => verdict(a, NFT_RETURN, None),
        Target::Mark { mark, mask } => {
            // struct xt_mark_tginfo2 { u32 mark, mask; }
            let mut info = [0u8; 8];
            info[0..4].copy_from_slice(&mark.to_ne_bytes());
            info[4..8].copy_from_slice(&mask.to_ne_bytes());
            xt(a, "target", "MARK", 2, &info);
        }
        Target::Masquerade { random_fully } => {
            // struct nf_nat_ipv4_multi_range_compat { u32 rangesize;
            // struct nf_nat_ipv4_range { u32 flags; ... } range[1]; }
            let mut info = [0u8; 24];
            info[0..4].copy_from_slice(&1u32.to_ne_bytes());
            if *random_fully {
                info[4..8].copy_from_slice(&NF_NAT_RANGE_PROTO_RANDOM_FULLY.to_ne_bytes());
            }
            xt(a, "target", "MASQUERADE", 0, &info);
        }
        Target::Dnat { addr, port } => {
            // struct nf_nat_range2 { u32 flags; nf_inet_addr min_addr,
            // max_addr; be16 min_proto, max_proto, base_proto; }: 42
            // bytes, 48 aligned.
            let mut info = [0u8; 48];
            let flags = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED;
            info[0..4].copy_from_slice(&flags.to_ne_bytes());
            info[4..8].copy_from_slice(&addr.octets());
            info[20..24].copy_from_slice(&addr.octets());
            info[36..38].copy_from_slice(&port.to_be_bytes());
            info[38..40].copy_from_slice(&port.to_be_bytes());
            xt(a, "target", "DNAT", 2, &info);
        }
        Target::RejectPortUnreachable => {
            // struct ipt_reject_info { u32 with; }, 8 aligned.
            let mut info = [0u8; 8];
            info[0..4].copy_from_slice(&IPT_ICMP_PORT_UNREACHABLE.to_ne_bytes());
            xt(a, "target", "REJECT", 0, &info);
        }
    }
}
