//! `$(VAR)` expansion in env values, command and args, as the kubelet does it
//! (k8s.io/kubernetes/third_party/forked/golang/expansion): `$(VAR)` is
//! replaced when VAR is defined and left as is otherwise; `$$` is an escaped `$`.

pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            out.push_str(&input[last..i]);
            match b[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                }
                b'(' => match input[i + 2..].find(')') {
                    Some(rel) => {
                        let name = &input[i + 2..i + 2 + rel];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        i = i + 2 + rel + 1;
                    }
                    None => {
                        out.push_str(&input[i..]);
                        i = b.len();
                    }
                },
                _ => {
                    out.push_str(&input[i..i + 2]);
                    i += 2;
                }
            }
            last = i;
        } else {
            i += 1;
        }
    }
    if last < b.len() {
        out.push_str(&input[last..]);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::expand;

    fn env(k: &str) -> Option<String> {
        match k {
            "A" => Some("alpha".into()),
            "POD_IP" => Some("10.1.1.2".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_kubelet_rules() {
        let cases = [
            ("$(A)", "alpha"),
            ("x-$(A)-y", "x-alpha-y"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("a$b", "a$b"),
            ("--advertise-addr=$(POD_IP):6124", "--advertise-addr=10.1.1.2:6124"),
            ("$(A", "$(A"),
            ("trailing$", "trailing$"),
            ("héllo $(A)", "héllo alpha"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &env), want, "input {input:?}");
        }
    }
}
