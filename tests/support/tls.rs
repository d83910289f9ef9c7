//! TLS for the endpoint's tests: a private CA with a server certificate for
//! `localhost`/127.0.0.1 and client certificates, made by `openssl` in a temp dir, and
//! `curl` as the client, so both ends of every handshake are real TLS stacks; bcrypt
//! hashes by `htpasswd`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::run_bounded;

/// Time openssl or curl get; far beyond what either needs on a busy machine.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// A CA, a server certificate it signed, a client certificate it signed and one a
/// stranger CA signed (both naming `scraper.example`, 127.0.0.2 and
/// `spiffe://fleet/prometheus`), each with its key, in one temp dir.
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    /// Makes every file with `openssl` (P-256 keys, valid two days).
    pub fn new() -> Pki {
        let pki = Pki { dir: tempfile::tempdir().expect("temp dir") };
        for ca in ["ca", "stranger-ca"] {
            pki.openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &format!("{ca}.key"),
            ]);
            let subject = format!("/CN=bootgate test {ca}");
            pki.openssl(&[
                "req",
                "-x509",
                "-key",
                &format!("{ca}.key"),
                "-subj",
                &subject,
                "-days",
                "2",
                "-out",
                &format!("{ca}.crt"),
            ]);
        }
        pki.leaf(
            "server",
            "ca",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        let client = "subjectAltName=DNS:scraper.example,IP:127.0.0.2,URI:spiffe://fleet/prometheus\n\
                      extendedKeyUsage=clientAuth\n";
        pki.leaf("client", "ca", "scraper", client);
        pki.leaf("stranger", "stranger-ca", "scraper", client);
        pki
    }

    /// The file `name` (`ca.crt`, `server.key`, `client.crt`, …).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces `server.key` and `server.crt` with a new pair signed by `ca`, each by a
    /// rename, as a certificate renewal tool does.
    pub fn reissue_server(&self, ca: &str) {
        self.leaf(
            "renewed",
            ca,
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        for ext in ["key", "crt"] {
            std::fs::rename(self.path(&format!("renewed.{ext}")), self.path(&format!("server.{ext}"))).expect("rename");
        }
    }

    /// `expired.key` and `expired.crt`, for `localhost`, signed by the CA for one day in 2020
    /// (`openssl ca`, which alone takes explicit dates).
    pub fn expired_server(&self) {
        let conf = "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
                    default_md = sha256\npolicy = p\ncopy_extensions = none\n[p]\ncommonName = supplied\n";
        std::fs::write(self.path("ca.cnf"), conf).expect("write ca.cnf");
        std::fs::write(self.path("index.txt"), "").expect("write index.txt");
        std::fs::write(self.path("serial"), "01\n").expect("write serial");
        std::fs::write(self.path("expired.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("write ext");
        self.openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "expired.key"]);
        self.openssl(&["req", "-new", "-key", "expired.key", "-subj", "/CN=localhost", "-out", "expired.csr"]);
        self.openssl(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.crt",
            "-keyfile",
            "ca.key",
            "-in",
            "expired.csr",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-extfile",
            "expired.ext",
            "-out",
            "expired.crt",
        ]);
    }

    /// `NAME.key` and `NAME.crt` signed by `ca`, with `extensions` (openssl's extfile syntax).
    fn leaf(&self, name: &str, ca: &str, cn: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(self.path(&ext), extensions).expect("write extfile");
        let (key, csr, crt) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"));
        self.openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &key]);
        self.openssl(&["req", "-new", "-key", &key, "-subj", &format!("/CN={cn}"), "-out", &csr]);
        let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
        self.openssl(&[
            "x509", "-req", "-in", &csr, "-CA", &ca_crt, "-CAkey", &ca_key, "-days", "2", "-extfile", &ext, "-out",
            &crt,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let mut cmd = Command::new("openssl");
        cmd.args(args).current_dir(self.dir.path());
        let out = run_bounded(&mut cmd, TOOL_TIMEOUT);
        assert!(
            out.status.success(),
            "openssl {args:?} (build/deps.sh installs openssl): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A bcrypt hash of `password` made by `htpasswd`, as operators make them for node_exporter.
pub fn bcrypt(password: &str) -> String {
    let mut cmd = Command::new("htpasswd");
    cmd.args(["-nbBC", "10", "", password]);
    let out = run_bounded(&mut cmd, TOOL_TIMEOUT);
    assert!(
        out.status.success(),
        "htpasswd (build/deps.sh installs apache2-utils): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).expect("htpasswd prints text");
    line.trim().trim_start_matches(':').to_string()
}

/// What curl got: its exit code (35 and 56 are failed handshakes), the HTTP status
/// (0 when none), the headers and the body.
#[derive(Debug)]
pub struct Fetched {
    pub exit: i32,
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// `curl` with `args` (certificates, `-u`, …) against `url`, trusting `ca`.
pub fn curl(ca: &Path, url: &str, args: &[&str]) -> Fetched {
    let dir = tempfile::tempdir().expect("temp dir");
    let (headers, body) = (dir.path().join("headers"), dir.path().join("body"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "--cacert"]).arg(ca).arg("-D").arg(&headers).arg("-o").arg(&body);
    cmd.args(["-w", "%{http_code}"]).args(args).arg(url);
    let out = run_bounded(&mut cmd, TOOL_TIMEOUT);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Fetched {
        exit: out.status.code().unwrap_or(-1),
        status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0),
        headers: read(&headers),
        body: read(&body),
    }
}
