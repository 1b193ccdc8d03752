//! One nf_tables transaction as netlink bytes: a batch of messages between
//! BATCH_BEGIN and BATCH_END, which the kernel applies all or nothing.
//! Pure: building the bytes needs no socket.

/// nfnetlink subsystem of nf_tables.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;

const AF_INET: u8 = 2;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_COMPAT: u16 = 5;
const NFTA_RULE_COMPAT_PROTO: u16 = 1;
const NFTA_RULE_COMPAT_FLAGS: u16 = 2;

/// Netlink attributes written into a growing buffer.
#[derive(Default)]
pub struct Attrs {
    pub buf: Vec<u8>,
}

impl Attrs {
    pub fn bytes(&mut self, ty: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    /// A NUL-terminated string, as the kernel's NLA_STRING policy wants.
    pub fn str(&mut self, ty: u16, value: &str) {
        let start = self.buf.len();
        let len = 4 + value.len() + 1;
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        debug_assert_eq!(self.buf.len() - start, len);
        self.pad();
    }

    /// nf_tables' integers are big-endian on the wire.
    pub fn u32_be(&mut self, ty: u16, value: u32) {
        self.bytes(ty, &value.to_be_bytes());
    }

    pub fn u64_be(&mut self, ty: u16, value: u64) {
        self.bytes(ty, &value.to_be_bytes());
    }

    /// A nested attribute whose contents `f` writes.
    pub fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Attrs)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// What a message of the batch does, borrowed from the input (formatted
/// only if the kernel refuses it).
#[derive(Clone, Copy, Debug)]
pub enum What<'a> {
    Begin,
    End,
    /// (verb, table)
    Table(&'static str, &'a str),
    /// (verb, chain)
    Chain(&'static str, &'a str),
    /// (the `-A` line, table)
    Rule(&'a str, &'a str),
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Begin => write!(f, "the begin of the transaction"),
            What::End => write!(f, "the end of the transaction"),
            What::Table(verb, t) => write!(f, "{verb} table {t}"),
            What::Chain(verb, c) => write!(f, "{verb} chain {c}"),
            What::Rule(line, t) => write!(f, "rule {line:?} of table {t}"),
        }
    }
}

/// A batch under construction. Every message gets its own sequence number;
/// `described` maps the numbers to what they did, so a kernel error can
/// name the rule it refused.
pub struct Batch<'a> {
    msgs: Attrs,
    seq: u32,
    /// Where the last message starts (it gets NLM_F_ACK at the end).
    last_start: usize,
    described: Vec<(u32, What<'a>)>,
}

impl Default for Batch<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Batch<'a> {
    pub fn new() -> Batch<'a> {
        let mut b = Batch {
            msgs: Attrs {
                buf: Vec::with_capacity(1 << 16),
            },
            seq: 0,
            last_start: 0,
            described: Vec::new(),
        };
        b.header(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
        // NFNL_BATCH_GENID, set by `Finished::expect_generation`; 0: any.
        b.msgs.u32_be(1, 0);
        b.finish(0, What::Begin);
        b
    }

    /// Grows the buffer for about `bytes` more.
    pub fn reserve(&mut self, bytes: usize) {
        self.msgs.buf.reserve(bytes);
    }

    /// Starts a message: nlmsghdr + nfgenmsg. `finish` sets its length.
    fn header(&mut self, ty: u16, flags: u16, family: u8, res_id: u16) -> usize {
        let start = self.msgs.buf.len();
        self.seq += 1;
        let b = &mut self.msgs.buf;
        b.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&self.seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        b.push(family);
        b.push(0); // NFNETLINK_V0
        b.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    fn message(&mut self, cmd: u16, flags: u16, what: What<'a>, f: impl FnOnce(&mut Attrs)) {
        let start = self.header(
            (NFNL_SUBSYS_NFTABLES << 8) | cmd,
            NLM_F_REQUEST | flags,
            AF_INET,
            0,
        );
        f(&mut self.msgs);
        self.finish(start, what);
    }

    fn finish(&mut self, start: usize, what: What<'a>) {
        let len = (self.msgs.buf.len() - start) as u32;
        self.msgs.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        self.last_start = start;
        self.described.push((self.seq, what));
    }

    /// Creates the table if it does not exist (a no-op otherwise).
    pub fn new_table(&mut self, table: &'a str) {
        self.message(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            What::Table("create", table),
            |a| a.str(NFTA_TABLE_NAME, table),
        );
    }

    /// Deletes the table with every chain and rule in it.
    pub fn delete_table(&mut self, table: &'a str) {
        self.message(NFT_MSG_DELTABLE, 0, What::Table("delete", table), |a| {
            a.str(NFTA_TABLE_NAME, table)
        });
    }

    /// A built-in chain: attached to a netfilter hook, with a policy.
    pub fn new_base_chain(&mut self, table: &str, chain: &'a str, hook: &BaseChain, accept: bool) {
        self.message(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            What::Chain("create", chain),
            |a| {
                a.str(NFTA_CHAIN_TABLE, table);
                a.str(NFTA_CHAIN_NAME, chain);
                a.nest(NFTA_CHAIN_HOOK, |a| {
                    a.u32_be(NFTA_HOOK_HOOKNUM, hook.hook);
                    a.u32_be(NFTA_HOOK_PRIORITY, hook.priority as u32);
                });
                a.u32_be(NFTA_CHAIN_POLICY, accept as u32);
                a.str(NFTA_CHAIN_TYPE, hook.kind);
            },
        );
    }

    /// A user-defined chain; `exclusive`: fail if it exists.
    pub fn new_chain(&mut self, table: &str, chain: &'a str, exclusive: bool) {
        let flags = NLM_F_CREATE | if exclusive { NLM_F_EXCL } else { 0 };
        self.message(NFT_MSG_NEWCHAIN, flags, What::Chain("create", chain), |a| {
            a.str(NFTA_CHAIN_TABLE, table);
            a.str(NFTA_CHAIN_NAME, chain);
        });
    }

    /// Removes every rule of the chain.
    pub fn flush_chain(&mut self, table: &str, chain: &'a str) {
        self.message(NFT_MSG_DELRULE, 0, What::Chain("flush", chain), |a| {
            a.str(NFTA_RULE_TABLE, table);
            a.str(NFTA_RULE_CHAIN, chain);
        });
    }

    pub fn delete_chain(&mut self, table: &str, chain: &'a str) {
        self.message(NFT_MSG_DELCHAIN, 0, What::Chain("delete", chain), |a| {
            a.str(NFTA_CHAIN_TABLE, table);
            a.str(NFTA_CHAIN_NAME, chain);
        });
    }

    /// Appends a rule to `chain`. `exprs` writes the list of expressions;
    /// `proto` is the rule's `-p` (0: none), which xt matches such as
    /// `tcp` check against, as in iptables' own rules.
    pub fn append_rule(
        &mut self,
        table: &str,
        chain: &str,
        proto: u8,
        what: What<'a>,
        exprs: impl FnOnce(&mut Attrs),
    ) {
        self.message(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, what, |a| {
            a.str(NFTA_RULE_TABLE, table);
            a.str(NFTA_RULE_CHAIN, chain);
            a.nest(NFTA_RULE_EXPRESSIONS, exprs);
            a.nest(NFTA_RULE_COMPAT, |a| {
                a.u32_be(NFTA_RULE_COMPAT_PROTO, proto as u32);
                a.u32_be(NFTA_RULE_COMPAT_FLAGS, 0);
            });
        });
    }

    /// Ends the batch. The last message before the end asks for an
    /// acknowledgement: the kernel sends it only after the whole
    /// transaction committed (errors come without asking). Returns the
    /// bytes, the sequence number to wait for, and the descriptions.
    pub fn end(mut self) -> Finished<'a> {
        if self.seq == 1 {
            // Nothing but the begin message: nothing to send.
            return Finished {
                bytes: Vec::new(),
                ack_seq: 0,
                described: Vec::new(),
            };
        }
        // Set NLM_F_ACK on the last message (the one just before the end).
        let flags_at = self.last_start + 6;
        let flags = u16::from_ne_bytes([self.msgs.buf[flags_at], self.msgs.buf[flags_at + 1]]);
        self.msgs.buf[flags_at..flags_at + 2].copy_from_slice(&(flags | NLM_F_ACK).to_ne_bytes());
        let ack_seq = self.seq;
        let start = self.header(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
        self.finish(start, What::End);
        Finished {
            bytes: self.msgs.buf,
            ack_seq,
            described: self.described,
        }
    }
}

/// A finished batch, ready to send.
pub struct Finished<'a> {
    /// Empty when the batch changes nothing.
    pub bytes: Vec<u8>,
    /// The sequence number whose acknowledgement means "committed".
    pub ack_seq: u32,
    pub described: Vec<(u32, What<'a>)>,
}

/// Where the begin message's NFNL_BATCH_GENID value sits: after the
/// netlink header (16), nfgenmsg (4) and the attribute's header (4).
const GENID_AT: usize = 24;

impl Finished<'_> {
    /// The kernel commits the batch only if the ruleset is still at
    /// `generation` (it refuses it with ERESTART otherwise), so the writer
    /// knows the generation after its commit: the next one.
    pub fn expect_generation(&mut self, generation: u32) {
        if self.bytes.is_empty() {
            return;
        }
        self.bytes[GENID_AT..GENID_AT + 4].copy_from_slice(&generation.to_be_bytes());
    }

    pub fn describe(&self, seq: u32) -> String {
        self.described
            .binary_search_by_key(&seq, |(s, _)| *s)
            .map(|i| self.described[i].1.to_string())
            .unwrap_or_else(|_| "the transaction".into())
    }
}

/// Where a built-in chain hooks into netfilter, as iptables-nft makes it.
pub struct BaseChain {
    pub name: &'static str,
    pub hook: u32,
    pub priority: i32,
    /// nf_tables chain type: "filter" or "nat".
    pub kind: &'static str,
}

const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_LOCAL_IN: u32 = 1;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_INET_POST_ROUTING: u32 = 4;

/// The built-in chains of an iptables table, in iptables' order; `None`
/// for a table minik8s does not write.
pub fn builtin_chains(table: &str) -> Option<&'static [BaseChain]> {
    const FILTER: &[BaseChain] = &[
        BaseChain {
            name: "INPUT",
            hook: NF_INET_LOCAL_IN,
            priority: 0,
            kind: "filter",
        },
        BaseChain {
            name: "FORWARD",
            hook: NF_INET_FORWARD,
            priority: 0,
            kind: "filter",
        },
        BaseChain {
            name: "OUTPUT",
            hook: NF_INET_LOCAL_OUT,
            priority: 0,
            kind: "filter",
        },
    ];
    const NAT: &[BaseChain] = &[
        BaseChain {
            name: "PREROUTING",
            hook: NF_INET_PRE_ROUTING,
            priority: -100,
            kind: "nat",
        },
        BaseChain {
            name: "INPUT",
            hook: NF_INET_LOCAL_IN,
            priority: 100,
            kind: "nat",
        },
        BaseChain {
            name: "OUTPUT",
            hook: NF_INET_LOCAL_OUT,
            priority: -100,
            kind: "nat",
        },
        BaseChain {
            name: "POSTROUTING",
            hook: NF_INET_POST_ROUTING,
            priority: 100,
            kind: "nat",
        },
    ];
    match table {
        "filter" => Some(FILTER),
        "nat" => Some(NAT),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the messages of a batch: (type, flags, seq).
    fn messages(b: &[u8]) -> Vec<(u16, u16, u32)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let len = u32::from_ne_bytes(b[at..at + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(b[at + 4..at + 6].try_into().unwrap());
            let flags = u16::from_ne_bytes(b[at + 6..at + 8].try_into().unwrap());
            let seq = u32::from_ne_bytes(b[at + 8..at + 12].try_into().unwrap());
            assert!(len >= 20 && len.is_multiple_of(4), "message length {len}");
            out.push((ty, flags, seq));
            at += len;
        }
        assert_eq!(at, b.len());
        out
    }

    #[test]
    fn a_batch_is_framed_and_acknowledged_on_its_last_message() {
        let mut b = Batch::new();
        b.new_table("nat");
        b.new_chain("nat", "KUBE-SVC-X", true);
        b.append_rule("nat", "KUBE-SVC-X", 6, What::Rule("-j X", "nat"), |_| {});
        let done = b.end();
        let msgs = messages(&done.bytes);
        assert_eq!(msgs.len(), 5);
        assert_eq!(msgs[0].0, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(msgs[4].0, NFNL_MSG_BATCH_END);
        assert_eq!(msgs[3].0, (10 << 8) | NFT_MSG_NEWRULE);
        // Only the last real message asks for an ack.
        assert_eq!(msgs[3].1 & NLM_F_ACK, NLM_F_ACK);
        assert!(msgs[..3].iter().all(|m| m.1 & NLM_F_ACK == 0));
        assert_eq!(done.ack_seq, msgs[3].2);
        assert_eq!(done.describe(msgs[3].2), "rule \"-j X\" of table nat");
        assert_eq!(done.describe(999), "the transaction");
    }

    #[test]
    fn the_expected_generation_goes_into_the_begin_message() {
        assert!(Batch::new().end().bytes.is_empty());
        let mut b = Batch::new();
        b.new_table("nat");
        let mut done = b.end();
        // type 1 (NFNL_BATCH_GENID), length 8, value 0 until set.
        assert_eq!(&done.bytes[20..28], [8, 0, 1, 0, 0, 0, 0, 0]);
        done.expect_generation(0x01020304);
        assert_eq!(&done.bytes[20..28], [8, 0, 1, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn strings_are_nul_terminated_and_attributes_padded() {
        let mut a = Attrs::default();
        a.str(1, "nat");
        assert_eq!(a.buf, [8, 0, 1, 0, b'n', b'a', b't', 0]);
        a.nest(4, |a| a.u32_be(1, 6));
        assert_eq!(&a.buf[8..], [12, 0, 4, 0x80, 8, 0, 1, 0, 0, 0, 0, 6]);
        let mut b = Attrs::default();
        b.bytes(1, &[0x11]);
        assert_eq!(b.buf, [5, 0, 1, 0, 0x11, 0, 0, 0]);
    }
}
