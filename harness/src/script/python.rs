//! Python blocks (`%{ ... }%`) that only assert `tcpi_*` fields of `TCP_INFO`: parsed into a small
//! expression tree and evaluated against the stack's connection info. Anything else in a block is
//! refused, naming the statement.
//!
//! The grammar is the part of Python the suite's asserts use: `assert EXPR[, MESSAGE]` statements
//! separated by newlines or `;`; `or`, `and`, `not`; chained comparisons (`a <= x <= b`);
//! `+ - * / // % & |`; parentheses; integers; names (`tcpi_*` fields and `TCPI_OPT_*`
//! constants). The message is never evaluated. Must not depend on: the stack, files.

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PyExpr {
    /// An integer literal.
    Int(i64),
    /// A name: a `tcpi_*` field or a `TCPI_OPT_*` constant.
    Name(String),
    /// `not x`.
    Not(Box<PyExpr>),
    /// `-x`.
    Neg(Box<PyExpr>),
    /// `a op b` for arithmetic and bit operators.
    Bin(Box<PyExpr>, &'static str, Box<PyExpr>),
    /// `a and b`.
    And(Box<PyExpr>, Box<PyExpr>),
    /// `a or b`.
    Or(Box<PyExpr>, Box<PyExpr>),
    /// `a < b <= c ...`: every adjacent pair holds.
    Compare(Box<PyExpr>, Vec<(&'static str, PyExpr)>),
}

/// One `assert` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assert {
    /// The condition.
    pub cond: PyExpr,
    /// The statement as written, for messages.
    pub text: String,
}

/// Parses a block's text; `Err` names the statement that is not an assert this evaluator reads.
pub fn parse_block(text: &str) -> Result<Vec<Assert>, String> {
    let joined = text.replace("\\\n", " ");
    let mut out = Vec::new();
    for stmt in joined.split(['\n', ';']) {
        let stmt = stmt.trim();
        if stmt.is_empty() || stmt.starts_with('#') {
            continue;
        }
        let refuse = || format!("Python statement `{stmt}` (only `assert` on tcpi_* fields)");
        let Some(body) = stmt.strip_prefix("assert ") else { return Err(refuse()) };
        // `, message`: not evaluated.
        let toks = tokens(condition(body)).map_err(|_| refuse())?;
        let mut p = Parser { toks: &toks, pos: 0, depth: 0 };
        let cond = p.or().map_err(|_| refuse())?;
        if p.pos < toks.len() {
            return Err(refuse());
        }
        out.push(Assert { cond, text: stmt.to_string() });
    }
    Ok(out)
}

/// The condition of `assert COND, MESSAGE`: up to the first `,` outside brackets and quotes.
fn condition(body: &str) -> &str {
    let mut depth = 0i32;
    let mut quote = None;
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => return &body[..i],
            _ => {}
        }
    }
    body
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Int(i64),
    Name(String),
    Op(&'static str),
}

const OPS: &[&str] = &["<=", ">=", "==", "!=", "//", "<", ">", "+", "-", "*", "/", "%", "&", "|", "(", ")"];

fn tokens(s: &str) -> Result<Vec<Tok>, ()> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i] as char).is_ascii_alphanumeric() {
                i += 1;
            }
            let t = &s[start..i];
            let v = match t.strip_prefix("0x") {
                Some(h) => i64::from_str_radix(h, 16),
                None => t.parse(),
            };
            out.push(Tok::Int(v.map_err(|_| ())?));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Name(s[start..i].to_string()));
        } else {
            let op = OPS.iter().find(|o| s[i..].starts_with(**o)).ok_or(())?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

struct Parser<'t> {
    toks: &'t [Tok],
    pos: usize,
    /// Nesting so far (`not`, `-`, parentheses), bounded so that no input overflows the stack.
    depth: usize,
}

/// The deepest nesting a condition may have.
const MAX_DEPTH: usize = 64;

type R = Result<PyExpr, ()>;

impl Parser<'_> {
    fn word(&mut self, w: &str) -> bool {
        if matches!(self.toks.get(self.pos), Some(Tok::Name(n)) if n == w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn op(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(o)) if ops.contains(o) => {
                self.pos += 1;
                Some(o)
            }
            _ => None,
        }
    }

    fn or(&mut self) -> R {
        let mut e = self.and()?;
        while self.word("or") {
            e = PyExpr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> R {
        let mut e = self.not()?;
        while self.word("and") {
            e = PyExpr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn nested(&mut self, f: fn(&mut Self) -> R) -> R {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(());
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn not(&mut self) -> R {
        if self.word("not") {
            return Ok(PyExpr::Not(Box::new(self.nested(Self::not)?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> R {
        let first = self.bitor()?;
        let mut rest = Vec::new();
        while let Some(o) = self.op(&["<=", ">=", "==", "!=", "<", ">"]) {
            rest.push((o, self.bitor()?));
        }
        Ok(if rest.is_empty() { first } else { PyExpr::Compare(Box::new(first), rest) })
    }

    fn binary(&mut self, ops: &[&'static str], next: fn(&mut Self) -> R) -> R {
        let mut e = next(self)?;
        while let Some(o) = self.op(ops) {
            e = PyExpr::Bin(Box::new(e), o, Box::new(next(self)?));
        }
        Ok(e)
    }

    fn bitor(&mut self) -> R {
        self.binary(&["|"], Self::bitand)
    }

    fn bitand(&mut self) -> R {
        self.binary(&["&"], Self::sum)
    }

    fn sum(&mut self) -> R {
        self.binary(&["+", "-"], Self::product)
    }

    fn product(&mut self) -> R {
        self.binary(&["*", "/", "//", "%"], Self::unary)
    }

    fn unary(&mut self) -> R {
        if self.op(&["-"]).is_some() {
            return Ok(PyExpr::Neg(Box::new(self.nested(Self::unary)?)));
        }
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Int(v)) => {
                self.pos += 1;
                Ok(PyExpr::Int(v))
            }
            Some(Tok::Name(n)) if !matches!(n.as_str(), "and" | "or" | "not") => {
                self.pos += 1;
                Ok(PyExpr::Name(n))
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let e = self.nested(Self::or)?;
                self.op(&[")"]).ok_or(())?;
                Ok(e)
            }
            _ => Err(()),
        }
    }
}

/// The `TCPI_OPT_*` constants of `linux/tcp.h`, the `TCP_CA_*` states of `enum tcp_ca_state`
/// and the `TCP_*` states of `linux/tcp_states.h` (what `tcpi_state` holds).
pub(crate) fn constant(name: &str) -> Option<i64> {
    Some(match name {
        "TCP_ESTABLISHED" => 1,
        "TCP_SYN_SENT" => 2,
        "TCP_SYN_RECV" => 3,
        "TCP_FIN_WAIT1" => 4,
        "TCP_FIN_WAIT2" => 5,
        "TCP_TIME_WAIT" => 6,
        "TCP_CLOSE" => 7,
        "TCP_CLOSE_WAIT" => 8,
        "TCP_LAST_ACK" => 9,
        "TCP_LISTEN" => 10,
        "TCP_CLOSING" => 11,
        "TCP_CA_Open" => 0,
        "TCP_CA_Disorder" => 1,
        "TCP_CA_CWR" => 2,
        "TCP_CA_Recovery" => 3,
        "TCP_CA_Loss" => 4,
        "TCPI_OPT_TIMESTAMPS" => 1,
        "TCPI_OPT_SACK" => 2,
        "TCPI_OPT_WSCALE" => 4,
        "TCPI_OPT_ECN" => 8,
        "TCPI_OPT_ECN_SEEN" => 16,
        "TCPI_OPT_SYN_DATA" => 32,
        "True" => 1,
        "False" => 0,
        _ => return None,
    })
}

/// Evaluates `e`; `field` gives a `tcpi_*` value, `Err` on a field it does not have (the name is
/// the refusal's feature).
pub fn eval(e: &PyExpr, field: &dyn Fn(&str) -> Option<i64>) -> Result<i64, String> {
    Ok(match e {
        PyExpr::Int(v) => *v,
        PyExpr::Name(n) => match constant(n).or_else(|| field(n)) {
            Some(v) => v,
            None => return Err(format!("TCP_INFO field {n}")),
        },
        PyExpr::Not(x) => i64::from(eval(x, field)? == 0),
        PyExpr::Neg(x) => eval(x, field)?.wrapping_neg(),
        PyExpr::And(a, b) => {
            let a = eval(a, field)?;
            if a == 0 {
                a
            } else {
                eval(b, field)?
            }
        }
        PyExpr::Or(a, b) => {
            let a = eval(a, field)?;
            if a != 0 {
                a
            } else {
                eval(b, field)?
            }
        }
        PyExpr::Bin(a, op, b) => {
            let (a, b) = (eval(a, field)?, eval(b, field)?);
            match *op {
                "+" => a.wrapping_add(b),
                "-" => a.wrapping_sub(b),
                "*" => a.wrapping_mul(b),
                "/" | "//" => a.checked_div_euclid(b).unwrap_or(0),
                "%" => a.checked_rem_euclid(b).unwrap_or(0),
                "&" => a & b,
                _ => a | b,
            }
        }
        PyExpr::Compare(first, rest) => {
            let mut left = eval(first, field)?;
            for (op, e) in rest {
                let right = eval(e, field)?;
                let holds = match *op {
                    "<=" => left <= right,
                    ">=" => left >= right,
                    "==" => left == right,
                    "!=" => left != right,
                    "<" => left < right,
                    _ => left > right,
                };
                if !holds {
                    return Ok(0);
                }
                left = right;
            }
            1
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(n: &str) -> Option<i64> {
        match n {
            "tcpi_snd_cwnd" => Some(10),
            "tcpi_rtt" => Some(100_000),
            "tcpi_options" => Some(7),
            "tcpi_state" => Some(1),
            _ => None,
        }
    }

    fn holds(block: &str) -> Result<bool, String> {
        let asserts = parse_block(block)?;
        for a in &asserts {
            if eval(&a.cond, &fields)? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    #[test]
    fn asserts_on_tcpi_fields_are_evaluated() {
        assert_eq!(holds("assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd"), Ok(true));
        assert_eq!(holds("assert tcpi_snd_cwnd == 11, tcpi_snd_cwnd"), Ok(false));
        assert_eq!(
            holds("assert 99000 <= tcpi_rtt <= 101000;\\\n assert tcpi_snd_cwnd * 2 - 1 == 19"),
            Ok(true)
        );
        assert_eq!(holds("assert 101000 <= tcpi_rtt <= 200000"), Ok(false));
        assert_eq!(holds("assert tcpi_options & TCPI_OPT_SACK != 0 and not tcpi_snd_cwnd < 5"), Ok(true));
        assert_eq!(holds("assert tcpi_options & TCPI_OPT_SYN_DATA == 0"), Ok(true));
        assert_eq!(holds("assert tcpi_state == TCP_ESTABLISHED, tcpi_state"), Ok(true));
        assert_eq!(
            holds("assert (tcpi_snd_cwnd == 3) or (tcpi_rtt // 1000 == 100), 'cwnd %d' % tcpi_snd_cwnd"),
            Ok(true)
        );
    }

    #[test]
    fn anything_but_asserts_is_refused_by_name() {
        assert_eq!(
            holds("print(tcpi_snd_cwnd)"),
            Err("Python statement `print(tcpi_snd_cwnd)` (only `assert` on tcpi_* fields)".into())
        );
        assert_eq!(holds("assert tcpi_lost == 0"), Err("TCP_INFO field tcpi_lost".into()));
        assert!(holds("assert tcpi_snd_cwnd in [1, 2]").is_err());
        let deep = format!("assert {}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(holds(&deep).is_err(), "deep nesting is refused, not a stack overflow");
        assert!(holds(&format!("assert {}1", "not ".repeat(10_000))).is_err());
    }
}
