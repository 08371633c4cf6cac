//! A real HTTP/1.1 server on 127.0.0.1 answering the Hugging Face Hub routes `k2 hub` (and
//! hf-hub, and huggingface_hub) call, serving the real tiny models of the repository's
//! `fixtures/models` at several revisions:
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

use crate::common::fixtures;

fn sha256_hex(b: &[u8]) -> String {
    hex_string(&Sha256::digest(b))
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Files stored in LFS on the Hub (the rest are plain git blobs).
fn is_lfs(name: &str) -> bool {
    name.ends_with(".safetensors")
        || name.ends_with(".bin")
        || name.ends_with(".model")
        || name.ends_with(".parquet")
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
    /// Bodies are written `bytes` at a time with `pause` between (a slow link).
    pub throttle: Option<(usize, std::time::Duration)>,
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

    /// Serve bodies `bytes` at a time with `pause` between; `None`: at full speed.
    pub fn throttle(&self, t: Option<(usize, std::time::Duration)>) {
        self.state.lock().unwrap().throttle = t;
    }

    /// `k2` talking to this server, with `home` as HF_HOME (a fresh cache) and working directory;
    /// no token, online, quick retries.
    pub fn k2(&self, home: &Path) -> std::process::Command {
        let mut c = crate::common::k2();
        c.env("HF_ENDPOINT", &self.url)
            .env("HF_HOME", home)
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .env("K2_HUB_BACKOFF_MS", "1")
            .env("K2_HUB_RETRIES", "3")
            .current_dir(home);
        c
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
        let throttle = st.lock().unwrap().throttle;
        match throttle {
            Some((bytes, pause)) => {
                for chunk in r.body[..n].chunks(bytes.max(1)) {
                    conn.write_all(chunk)?;
                    conn.flush()?;
                    std::thread::sleep(pause);
                }
            }
            None => conn.write_all(&r.body[..n])?,
        }
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
    // Dataset repositories are the same routes under `datasets/`; they are kept in `repos` under
    // `datasets/org/name`.
    let (path, kind) = if let Some(r) = path.strip_prefix("/api/datasets/") {
        (format!("/api/models/{r}"), "datasets/")
    } else if let Some(r) = path.strip_prefix("/datasets/") {
        (format!("/{r}"), "datasets/")
    } else {
        (path.to_string(), "")
    };
    let path = path.as_str();
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
        let Some(repo) = state.repos.get(&format!("{kind}{repo_id}")) else {
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
    let Some(repo) = state.repos.get(&format!("{kind}{repo_id}")) else {
        return error(404, "RepoNotFound");
    };
    if let Some(e) = authorized(repo, req) {
        return e;
    }
    // A revision with slashes (`refs/convert/parquet`) arrives as `refs%2Fconvert%2Fparquet`.
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

// ---- the benchmark datasets ----

fn files_under(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Arc<Vec<u8>>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if e.path().is_dir() {
            files_under(&e.path(), &rel, out);
        } else {
            out.insert(rel, Arc::new(std::fs::read(e.path()).unwrap()));
        }
    }
}

/// The dataset repositories of `fixtures/datasets` (keyed `datasets/org/name`), each at `main`
/// with a README; those `hub.json` lists as holding a loading script serve the script at `main`
/// and their parquet files only at `refs/convert/parquet`, as the Hub does.
pub fn dataset_repos() -> BTreeMap<String, Repo> {
    let root = shared();
    let hub: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("hub.json")).unwrap()).unwrap();
    let scripts: Vec<&str> = hub["script_repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut out = BTreeMap::new();
    for org in std::fs::read_dir(&root).unwrap().flatten() {
        if !org.path().is_dir() {
            continue;
        }
        for name in std::fs::read_dir(org.path()).unwrap().flatten() {
            let id = format!(
                "{}/{}",
                org.file_name().to_string_lossy(),
                name.file_name().to_string_lossy()
            );
            let mut files = BTreeMap::new();
            files_under(&name.path(), "", &mut files);
            let readme = Arc::new(format!("---\npretty_name: {id}\n---\n").into_bytes());
            let mut repo = Repo::default();
            if scripts.contains(&id.as_str()) {
                let script = format!("{}.py", name.file_name().to_string_lossy());
                let main = BTreeMap::from([
                    ("README.md".to_string(), readme),
                    (script, Arc::new(b"# a datasets loading script\n".to_vec())),
                ]);
                repo.branches
                    .insert("main".into(), revision(&id, "main", main));
                repo.branches.insert(
                    "refs/convert/parquet".into(),
                    revision(&id, "refs/convert/parquet", files),
                );
            } else {
                files.insert("README.md".into(), readme);
                repo.branches
                    .insert("main".into(), revision(&id, "main", files));
            }
            out.insert(format!("datasets/{id}"), repo);
        }
    }
    out
}

// ---- the tiny models at several revisions ----

/// The Hub-schema benchmark fixtures the sweeps evaluate on, as a `--data` folder.
pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/datasets")
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

/// Safetensors bytes `st` with one more f32 scalar tensor `name` = `value`.
pub fn with_tensor(st: &[u8], name: &str, value: f32) -> Vec<u8> {
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&st[8..8 + n]).unwrap();
    let data = &st[8 + n..];
    header.insert(
        name.to_string(),
        serde_json::json!({"dtype": "F32", "shape": [], "data_offsets": [data.len(), data.len() + 4]}),
    );
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend_from_slice(data);
    out.extend(value.to_le_bytes());
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

pub fn revision(repo: &str, rev: &str, files: BTreeMap<String, Arc<Vec<u8>>>) -> Revision {
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
    let base = read_dir_files(&fixtures().join("models/stories260K-hf"));
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
    let sharded = read_dir_files(&fixtures().join("models/tiny-random-llama-gqa-sharded"));
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

    // ... and as a PyTorch release: pytorch_model.bin, tokenizer.model only.
    let name = "k2-test/pt-only";
    let mut pt = base.clone();
    pt.remove("tokenizer.json");
    pt.remove("model.safetensors");
    pt.insert(
        "pytorch_model.bin".into(),
        Arc::new(torch_bin_from_safetensors(&st)),
    );
    let mut r = Repo::default();
    r.branches
        .insert("ckpt_000".into(), revision(name, "ckpt_000", pt));
    repos.insert(name.to_string(), r);

    // A Falcon checkpoint, an architecture k2 does not implement.
    let name = "k2-test/falcon";
    let mut neox = base.clone();
    neox.insert(
        "config.json".into(),
        Arc::new(
            br#"{"architectures":["FalconForCausalLM"],"model_type":"falcon","hidden_size":64,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":512,"parallel_attn":true}"#
                .to_vec(),
        ),
    );
    let mut nr = Repo::default();
    for rev in ["step0", "step1000"] {
        nr.branches
            .insert(rev.into(), revision(name, rev, neox.clone()));
    }
    repos.insert(name.to_string(), nr);

    // Tiny transformers-made models of the other families (tests/fixtures/families) as Pythia and
    // OLMo publish them: Pythia `stepN` branches (step2000's weights byte-identical to step1000's,
    // step3000 holding only pytorch_model.bin with the masked_bias buffer old transformers saved),
    // OLMo-1 `stepN-tokensTB` and OLMo-2 `stageK-stepN-tokensTB`.
    let families = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families");
    let neox = read_dir_files(&families.join("pythia-parallel"));
    let neox_st = neox["model.safetensors"].clone();
    let neox_with = |weights: Vec<u8>| {
        let mut f = neox.clone();
        f.insert("model.safetensors".into(), Arc::new(weights));
        f
    };
    let name = "k2-test/pythia-tiny";
    let mut py = Repo::default();
    py.branches.insert(
        "step0".into(),
        revision(name, "step0", neox_with(neox_st.to_vec())),
    );
    for rev in ["step1000", "step2000"] {
        py.branches.insert(
            rev.into(),
            revision(name, rev, neox_with(perturbed(&neox_st, 1))),
        );
    }
    let mut bin_only = neox.clone();
    bin_only.remove("model.safetensors");
    bin_only.insert(
        "pytorch_model.bin".into(),
        Arc::new(torch_bin_from_safetensors(&with_tensor(
            &perturbed(&neox_st, 2),
            "gpt_neox.layers.0.attention.masked_bias",
            -1e9,
        ))),
    );
    py.branches
        .insert("step3000".into(), revision(name, "step3000", bin_only));
    repos.insert(name.to_string(), py);
    for (name, variant, revs) in [
        (
            "k2-test/olmo-tiny",
            "olmo-tied",
            ["step1000-tokens4B", "step2000-tokens8B"],
        ),
        (
            "k2-test/olmo2-tiny",
            "olmo2",
            ["stage1-step1000-tokens5B", "stage1-step2000-tokens9B"],
        ),
    ] {
        let files = read_dir_files(&families.join(variant));
        let st = files["model.safetensors"].clone();
        let mut r = Repo::default();
        for (i, rev) in revs.iter().enumerate() {
            let mut f = files.clone();
            f.insert(
                "model.safetensors".into(),
                Arc::new(perturbed(&st, i as u8)),
            );
            r.branches.insert(rev.to_string(), revision(name, rev, f));
        }
        repos.insert(name.to_string(), r);
    }

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

// ---- a PyTorch `torch.save` file (zip of data.pkl + one storage per tensor), written by hand ----

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// An uncompressed ("stored") zip archive.
fn zip_stored(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let head = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes());
            }
            for v in [20u16, 0, 0, 0, 0] {
                h.extend(v.to_le_bytes());
            }
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes());
            if central {
                for v in [0u16, 0, 0] {
                    h.extend(v.to_le_bytes());
                }
                h.extend(0u32.to_le_bytes());
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend(data);
        central.extend(head(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, entries.len() as u16, entries.len() as u16] {
        out.extend(v.to_le_bytes());
    }
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// The state dict of a float32 safetensors file as `torch.save` writes it (pickle protocol 2:
/// name -> `torch._utils._rebuild_tensor_v2(persistent storage, 0, size, stride, False, OrderedDict())`).
pub fn torch_bin_from_safetensors(st: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
    let data = &st[8 + n..];
    let mut pkl = vec![0x80, 2, b'}', b'('];
    let uni = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    };
    let int = |p: &mut Vec<u8>, v: usize| {
        p.push(b'J');
        p.extend((v as i32).to_le_bytes());
    };
    let mut entries = Vec::new();
    let mut names: Vec<&String> = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        let t = &header[name];
        assert_eq!(t["dtype"], "F32", "{name}");
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let (a, b) = (
            t["data_offsets"][0].as_u64().unwrap() as usize,
            t["data_offsets"][1].as_u64().unwrap() as usize,
        );
        let numel: usize = shape.iter().product();
        let mut stride = vec![1usize; shape.len()];
        for k in (0..shape.len().saturating_sub(1)).rev() {
            stride[k] = stride[k + 1] * shape[k + 1];
        }
        uni(&mut pkl, name);
        pkl.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        pkl.push(b'(');
        uni(&mut pkl, "storage");
        pkl.extend(b"ctorch\nFloatStorage\n");
        uni(&mut pkl, &i.to_string());
        uni(&mut pkl, "cpu");
        int(&mut pkl, numel);
        pkl.extend(b"tQ");
        int(&mut pkl, 0);
        pkl.push(b'(');
        for d in &shape {
            int(&mut pkl, *d);
        }
        pkl.push(b't');
        pkl.push(b'(');
        for s in &stride {
            int(&mut pkl, *s);
        }
        pkl.push(b't');
        pkl.push(0x89);
        pkl.extend(b"ccollections\nOrderedDict\n)R");
        pkl.extend(b"tR");
        entries.push((format!("archive/data/{i}"), data[a..b].to_vec()));
    }
    pkl.extend(b"u.");
    entries.insert(0, ("archive/data.pkl".to_string(), pkl));
    entries.push(("archive/version".to_string(), b"3\n".to_vec()));
    zip_stored(&entries)
}
