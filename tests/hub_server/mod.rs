//! A real HTTP/1.1 server on 127.0.0.1 answering the Hugging Face Hub routes `k2 hub` (and
//! hf-hub, and huggingface_hub) call, serving the real tiny models of `../shared/data` at
//! several revisions:
//!
//! - `GET /api/models/{repo}/refs` -> `{"branches":[{"name","ref","targetCommit"}],"tags":[],"converts":[]}`
//! - `GET /api/models/{repo}/revision/{rev}[?blobs=true]` -> `{"id","sha","siblings":[{"rfilename","size","lfs"}]}`
//! - `HEAD|GET /{repo}/resolve/{rev}/{file}` -> `X-Repo-Commit`, `ETag`; LFS files answer 302 to
//!   `/cdn/{sha256}` with `X-Linked-Etag` and `X-Linked-Size`, like the Hub's CDN redirect
//! - `GET /cdn/{sha256}` with `Range: bytes=N-` -> 206 and `Content-Range`
//! - 401 (`X-Error-Code: GatedRepo`) for a gated repository without its token, 404 with
//!   `X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound`
//!
//! Faults a test can arm: drop the connection after N bytes of a blob (once), or serve a blob with
//! one byte flipped while the listing keeps the true sha256. Every request is logged.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

fn sha256_hex(b: &[u8]) -> String {
    hex_string(&Sha256::digest(b))
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Files stored in LFS on the Hub (the rest are plain git blobs).
fn is_lfs(name: &str) -> bool {
    name.ends_with(".safetensors") || name.ends_with(".bin") || name.ends_with(".model")
}

#[derive(Clone)]
pub struct Revision {
    pub commit: String,
    pub files: BTreeMap<String, Arc<Vec<u8>>>,
}

#[derive(Clone, Default)]
pub struct Repo {
    pub branches: BTreeMap<String, Revision>,
    /// A gated repository: this token is required.
    pub token: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub repos: BTreeMap<String, Repo>,
    /// sha256 -> bytes to stop after (once).
    pub drop_after: HashMap<String, usize>,
    /// sha256s served with one byte flipped.
    pub corrupt: Vec<String>,
    /// "METHOD path [range]" per request.
    pub log: Vec<String>,
    /// Path prefix -> how many more requests under it answer 503.
    pub fail: Vec<(String, usize)>,
}

pub struct Server {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl Server {
    pub fn start(repos: BTreeMap<String, Repo>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            repos,
            ..Default::default()
        }));
        let st = state.clone();
        let base = url.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                let base = base.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &st, &base);
                });
            }
        });
        Server { url, state }
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    pub fn drop_after(&self, sha: &str, bytes: usize) {
        self.state
            .lock()
            .unwrap()
            .drop_after
            .insert(sha.to_string(), bytes);
    }

    /// The next `n` requests whose path starts with `prefix` answer 503 Service Unavailable.
    pub fn fail_next(&self, prefix: &str, n: usize) {
        self.state
            .lock()
            .unwrap()
            .fail
            .push((prefix.to_string(), n));
    }

    pub fn corrupt(&self, sha: &str) {
        self.state.lock().unwrap().corrupt.push(sha.to_string());
    }
}

struct Req {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

fn read_req(conn: &TcpStream) -> Option<Req> {
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(Req {
        method,
        path,
        headers,
    })
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Stop writing the body after this many bytes and close.
    cut: Option<usize>,
}

fn resp(status: u16, body: impl Into<Vec<u8>>) -> Resp {
    Resp {
        status,
        headers: Vec::new(),
        body: body.into(),
        cut: None,
    }
}

fn json(v: serde_json::Value) -> Resp {
    let mut r = resp(200, serde_json::to_vec(&v).unwrap());
    r.headers
        .push(("Content-Type".into(), "application/json".into()));
    r
}

fn error(status: u16, code: &str) -> Resp {
    let mut r = resp(status, format!("{{\"error\":\"{code}\"}}"));
    r.headers.push(("X-Error-Code".into(), code.into()));
    r
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        503 => "Service Unavailable",
        _ => "Other",
    }
}

fn handle(mut conn: TcpStream, st: &Arc<Mutex<State>>, base: &str) -> std::io::Result<()> {
    let Some(req) = read_req(&conn) else {
        return Ok(());
    };
    let range = req.headers.get("range").cloned();
    st.lock().unwrap().log.push(format!(
        "{} {}{}",
        req.method,
        req.path,
        range.as_ref().map_or(String::new(), |r| format!(" {r}"))
    ));
    let r = route(&req, st, base);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        r.status,
        reason(r.status),
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    if req.method != "HEAD" {
        let n = r.cut.unwrap_or(r.body.len()).min(r.body.len());
        conn.write_all(&r.body[..n])?;
    }
    conn.flush()?;
    conn.shutdown(std::net::Shutdown::Both)
}

/// `org/name` + rest of a path after a prefix.
fn split_repo(rest: &str) -> Option<(String, &str)> {
    let mut it = rest.splitn(3, '/');
    let org = it.next()?;
    let name = it.next()?;
    Some((format!("{org}/{name}"), it.next().unwrap_or("")))
}

fn find_rev<'a>(repo: &'a Repo, rev: &str) -> Option<(&'a str, &'a Revision)> {
    let rev = rev.replace("%2F", "/");
    repo.branches
        .iter()
        .find(|(n, r)| **n == rev || r.commit == rev)
        .map(|(n, r)| (n.as_str(), r))
}

fn authorized(repo: &Repo, req: &Req) -> Option<Resp> {
    let token = repo.token.as_ref()?;
    match req.headers.get("authorization") {
        Some(a) if *a == format!("Bearer {token}") => None,
        Some(_) => Some(error(403, "GatedRepo")),
        None => Some(error(401, "GatedRepo")),
    }
}

fn etag_of(name: &str, bytes: &[u8]) -> String {
    if is_lfs(name) {
        sha256_hex(bytes)
    } else {
        // a git-blob-like id: 40 hex digits
        sha256_hex(&[b"blob ".as_slice(), bytes].concat())[..40].to_string()
    }
}

fn route(req: &Req, st: &Arc<Mutex<State>>, base: &str) -> Resp {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let mut state = st.lock().unwrap();
    if let Some(f) = state
        .fail
        .iter_mut()
        .find(|(p, n)| *n > 0 && path.starts_with(p.as_str()))
    {
        f.1 -= 1;
        return resp(503, "try again");
    }
    if let Some(sha) = path.strip_prefix("/cdn/") {
        let mut found = None;
        for repo in state.repos.values() {
            for rev in repo.branches.values() {
                for (n, b) in &rev.files {
                    if is_lfs(n) && sha256_hex(b) == sha {
                        found = Some(b.clone());
                    }
                }
            }
        }
        let Some(bytes) = found else {
            return resp(404, "no such blob");
        };
        let mut body = (*bytes).clone();
        if state.corrupt.iter().any(|c| c == sha) {
            let last = body.len() - 1;
            body[last] ^= 0xff;
        }
        let total = body.len();
        let mut start = 0;
        if let Some(r) = req.headers.get("range") {
            start = r
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap_or(0);
            if start >= total {
                return resp(416, "");
            }
        }
        let mut r = resp(if start > 0 { 206 } else { 200 }, body[start..].to_vec());
        if start > 0 {
            r.headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{}/{total}", total - 1),
            ));
        }
        r.cut = state.drop_after.remove(sha);
        return r;
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((repo_id, rest)) = split_repo(rest) else {
            return error(404, "RepoNotFound");
        };
        let Some(repo) = state.repos.get(&repo_id) else {
            return error(404, "RepoNotFound");
        };
        if let Some(e) = authorized(repo, req) {
            return e;
        }
        if rest == "refs" {
            let branches: Vec<_> = repo
                .branches
                .iter()
                .map(|(n, r)| {
                    serde_json::json!({"name": n, "ref": format!("refs/heads/{n}"), "targetCommit": r.commit})
                })
                .collect();
            return json(serde_json::json!({"branches": branches, "tags": [], "converts": []}));
        }
        let rev = match rest.strip_prefix("revision/") {
            Some(r) => r,
            None if rest.is_empty() => "main",
            None => return resp(404, "no such route"),
        };
        let Some((_, r)) = find_rev(repo, rev) else {
            return error(404, "RevisionNotFound");
        };
        let blobs = query.contains("blobs=true");
        let siblings: Vec<_> = r
            .files
            .iter()
            .map(|(n, b)| {
                let mut s = serde_json::json!({"rfilename": n});
                if blobs {
                    s["size"] = b.len().into();
                    s["blobId"] = etag_of(n, b).into();
                    if is_lfs(n) {
                        s["lfs"] = serde_json::json!({"sha256": sha256_hex(b), "size": b.len(), "pointerSize": 134});
                    }
                }
                s
            })
            .collect();
        return json(
            serde_json::json!({"id": repo_id, "modelId": repo_id, "sha": r.commit, "siblings": siblings}),
        );
    }
    // /{org}/{name}/resolve/{rev}/{file}
    let Some((repo_id, rest)) = split_repo(path.trim_start_matches('/')) else {
        return resp(404, "no such route");
    };
    let Some(rest) = rest.strip_prefix("resolve/") else {
        return resp(404, "no such route");
    };
    let Some(repo) = state.repos.get(&repo_id) else {
        return error(404, "RepoNotFound");
    };
    if let Some(e) = authorized(repo, req) {
        return e;
    }
    let (rev, file) = rest.split_once('/').unwrap_or((rest, ""));
    let Some((_, r)) = find_rev(repo, rev) else {
        return error(404, "RevisionNotFound");
    };
    let Some(bytes) = r.files.get(file) else {
        return error(404, "EntryNotFound");
    };
    let etag = etag_of(file, bytes);
    let mut out = if is_lfs(file) {
        let mut x = resp(302, "");
        x.headers
            .push(("Location".into(), format!("{base}/cdn/{etag}")));
        x.headers
            .push(("X-Linked-Etag".into(), format!("\"{etag}\"")));
        x.headers
            .push(("X-Linked-Size".into(), bytes.len().to_string()));
        x
    } else {
        resp(200, (**bytes).clone())
    };
    out.headers.push(("ETag".into(), format!("\"{etag}\"")));
    out.headers.push(("X-Repo-Commit".into(), r.commit.clone()));
    out
}

// ---- the tiny models at several revisions ----

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// `None` (and a printed reason) when ../shared/data is absent.
pub fn models_present() -> bool {
    let ok = shared()
        .join("models/stories260K-hf/model.safetensors")
        .exists()
        && shared()
            .join("models/tiny-random-llama-gqa-sharded/model.safetensors.index.json")
            .exists();
    if !ok {
        eprintln!(
            "skipping: {} not found (the tiny models live in ../shared/data)",
            shared().display()
        );
    }
    ok
}

fn read_dir_files(dir: &Path) -> BTreeMap<String, Arc<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if name == "README.md" {
            continue;
        }
        out.insert(name, Arc::new(std::fs::read(e.path()).unwrap()));
    }
    out
}

/// The same safetensors file with the low byte of its first weight changed.
pub fn perturbed(st: &[u8], delta: u8) -> Vec<u8> {
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let mut out = st.to_vec();
    out[8 + n] ^= delta;
    out
}

fn commit_of(repo: &str, rev: &str, files: &BTreeMap<String, Arc<Vec<u8>>>) -> String {
    let mut h = Sha256::new();
    h.update(repo.as_bytes());
    h.update(rev.as_bytes());
    for (n, b) in files {
        h.update(n.as_bytes());
        h.update(sha256_hex(b).as_bytes());
    }
    hex_string(&h.finalize())[..40].to_string()
}

fn revision(repo: &str, rev: &str, files: BTreeMap<String, Arc<Vec<u8>>>) -> Revision {
    Revision {
        commit: commit_of(repo, rev, &files),
        files,
    }
}

/// `k2-test/tiny`: stories260K at ckpt_000 (as released), ckpt_001 (one weight changed), ckpt_002
/// (byte-identical weights to ckpt_001, another commit) and main (= ckpt_002), each with an extra
/// README.md and eval_arc.json as LLM360's branches have. `k2-test/sharded`: the 8-shard bf16
/// model at main and ckpt_000. `k2-test/gated`: stories260K behind the token `secret-token`.
/// `k2-test/pythia-like`: steps out of order, and `k2-test/olmo-like`.
pub fn tiny_repos() -> BTreeMap<String, Repo> {
    let base = read_dir_files(&shared().join("models/stories260K-hf"));
    let st = base["model.safetensors"].clone();
    let with = |weights: Vec<u8>, extra: &str| {
        let mut f = base.clone();
        f.insert("model.safetensors".into(), Arc::new(weights));
        f.insert(
            "README.md".into(),
            Arc::new(format!("# {extra}\n").into_bytes()),
        );
        f.insert("eval_arc.json".into(), Arc::new(b"{}".to_vec()));
        f
    };
    let mut repos = BTreeMap::new();
    let name = "k2-test/tiny";
    let mut tiny = Repo::default();
    tiny.branches.insert(
        "ckpt_000".into(),
        revision(name, "ckpt_000", with(st.to_vec(), "ckpt_000")),
    );
    tiny.branches.insert(
        "ckpt_001".into(),
        revision(name, "ckpt_001", with(perturbed(&st, 1), "ckpt_001")),
    );
    let r2 = revision(name, "ckpt_002", with(perturbed(&st, 1), "ckpt_002"));
    tiny.branches.insert("ckpt_002".into(), r2.clone());
    tiny.branches.insert("main".into(), r2);
    repos.insert(name.to_string(), tiny);

    let name = "k2-test/sharded";
    let sharded = read_dir_files(&shared().join("models/tiny-random-llama-gqa-sharded"));
    let mut rs = Repo::default();
    rs.branches
        .insert("main".into(), revision(name, "main", sharded.clone()));
    rs.branches
        .insert("ckpt_000".into(), revision(name, "ckpt_000", sharded));
    repos.insert(name.to_string(), rs);

    let name = "k2-test/gated";
    let mut g = Repo {
        token: Some("secret-token".into()),
        ..Default::default()
    };
    g.branches
        .insert("main".into(), revision(name, "main", base.clone()));
    repos.insert(name.to_string(), g);

    // stories260K as LLaMA-1-era releases ship it: tokenizer.model, no tokenizer.json.
    let name = "k2-test/sp-only";
    let mut sp = base.clone();
    sp.remove("tokenizer.json");
    let mut r = Repo::default();
    r.branches
        .insert("ckpt_000".into(), revision(name, "ckpt_000", sp));
    repos.insert(name.to_string(), r);

    // A GPT-NeoX checkpoint (Pythia's architecture), which k2's LLaMA engine does not evaluate.
    let name = "k2-test/neox";
    let mut neox = base.clone();
    neox.insert(
        "config.json".into(),
        Arc::new(
            br#"{"architectures":["GPTNeoXForCausalLM"],"model_type":"gpt_neox","hidden_act":"gelu","hidden_size":64,"intermediate_size":256,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":512,"rotary_pct":0.25}"#
                .to_vec(),
        ),
    );
    let mut nr = Repo::default();
    for rev in ["step0", "step1000"] {
        nr.branches
            .insert(rev.into(), revision(name, rev, neox.clone()));
    }
    repos.insert(name.to_string(), nr);

    for (name, revs) in [
        (
            "k2-test/pythia-like",
            &[
                "step143000",
                "step1000",
                "step0",
                "step2",
                "step512",
                "main",
            ][..],
        ),
        (
            "k2-test/olmo-like",
            &[
                "stage2-ingredient1-step1000-tokens5B",
                "stage1-step2000-tokens9B",
                "stage1-step1000-tokens5B",
            ][..],
        ),
        (
            "k2-test/k2-like",
            &[
                "ministage2_ckpt_377",
                "spike_ckpt_160",
                "ckpt_161",
                "ckpt_160",
                "ckpt_2",
            ][..],
        ),
    ] {
        let mut r = Repo::default();
        for rev in revs {
            r.branches
                .insert(rev.to_string(), revision(name, rev, base.clone()));
        }
        repos.insert(name.to_string(), r);
    }
    repos
}

pub fn weights_sha(repos: &BTreeMap<String, Repo>, repo: &str, rev: &str) -> String {
    sha256_hex(&repos[repo].branches[rev].files["model.safetensors"])
}

pub fn commit(repos: &BTreeMap<String, Repo>, repo: &str, rev: &str) -> String {
    repos[repo].branches[rev].commit.clone()
}

pub fn sha256_of(b: &[u8]) -> String {
    sha256_hex(b)
}
