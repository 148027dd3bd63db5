//! A synthetic dump of a KBase auth2 database, in the shape auth2 writes it,
//! for the import benchmark (`bench/import_auth2.sh`):
//! `cargo run --release --example auth2_dump -- DIR USERS TOKENS`.
//! Half the users are local (all with one PBKDF2 hash: `correct horse battery
//! staple`), half have a provider identity; every token lives for a year.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a tool: it states failures by panicking

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use sha2::{Digest, Sha256};

fn writer(dir: &Path, collection: &str) -> BufWriter<File> {
    BufWriter::with_capacity(1 << 20, File::create(dir.join(format!("{collection}.bson"))).expect("a file"))
}

fn put(out: &mut impl Write, document: &Document) {
    let mut bytes = Vec::with_capacity(512);
    document.to_writer(&mut bytes).expect("BSON");
    out.write_all(&bytes).expect("written");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).expect("DIR USERS TOKENS"));
    let users: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let tokens: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    std::fs::create_dir_all(dir).expect("a folder");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let at = |ms: i64| DateTime::from_millis(ms);
    let none = Bson::Null;

    let mut config = writer(dir, "config");
    put(&mut config, &doc! {"_id": ObjectId::new(), "schema": "schema", "inupdate": false, "schemaver": 1});
    config.flush().expect("written");
    let mut app = writer(dir, "config_app");
    put(&mut app, &doc! {"_id": ObjectId::new(), "key": "allowlogin", "val": true});
    app.flush().expect("written");
    let mut roles = writer(dir, "cust_roles");
    let role_ids: Vec<ObjectId> = (0..10).map(|_| ObjectId::new()).collect();
    for (i, id) in role_ids.iter().enumerate() {
        put(&mut roles, &doc! {"_id": *id, "id": format!("role{i}"), "desc": format!("Role {i}")});
    }
    roles.flush().expect("written");

    let mut out = writer(dir, "users");
    for i in 0..users {
        let name = format!("user{i}");
        let local = i % 2 == 0;
        let mut user = doc! {
            "_id": ObjectId::new(), "user": &name, "anonid": uuid::Uuid::new_v4().to_string(), "lcl": local,
            "email": format!("{name}@example.org"), "display": format!("User Number{i}"),
            "dispcan": ["user", format!("number{i}")], "roles": ["DevToken"], "custrls": [role_ids[i % 10]],
            "policyids": [{"id": "kbase-tos", "agreed": at(now - 100_000_000)}],
            "create": at(now - 200_000_000), "login": at(now - 1_000_000),
            "dsbleadmin": none.clone(), "dsbledate": none.clone(), "dsblereas": none.clone(),
        };
        if local {
            user.insert("idents", Bson::Array(vec![]));
            user.insert("rstpwd", false);
            user.insert("lastrst", none.clone());
            user.insert("pwdhsh", "O/ewsEgje1x4p72diJgnu09BTvz6Iv1EgtwrC5X6SpM=");
            user.insert("salt", "AQIDBAUGBwg=");
        } else {
            let provider_id = format!("{}", 100_000_000_000u64 + i as u64);
            let id = format!("{:032x}", md5_of(&format!("Google_{provider_id}")));
            user.insert(
                "idents",
                bson::bson!([{"id": id, "prov": "Google", "prov_id": provider_id, "uid": format!("{name}@gmail.com"),
                    "fullname": format!("User {i}"), "email": format!("{name}@gmail.com")}]),
            );
        }
        put(&mut out, &user);
    }
    out.flush().expect("written");

    let mut out = writer(dir, "tokens");
    for i in 0..tokens {
        let value = format!("T{i:031}");
        let hash = base64_of(&Sha256::digest(value.as_bytes()));
        put(
            &mut out,
            &doc! {
                "_id": ObjectId::new(), "type": "Login", "user": format!("user{}", i % users.max(1)),
                "id": uuid::Uuid::new_v4().to_string(), "name": none.clone(), "token": hash,
                "expires": at(now + 365 * 86_400_000), "create": at(now - 1_000_000),
                "agent": "Chrome", "agentver": "120.0", "os": "Linux", "osver": none.clone(),
                "device": none.clone(), "ip": "192.0.2.7", "custctx": [{"k": "client", "v": "narrative"}],
            },
        );
    }
    out.flush().expect("written");
    println!("wrote {users} users and {tokens} tokens to {}", dir.display());
}

fn md5_of(text: &str) -> u128 {
    use md5::Digest as _;
    u128::from_be_bytes(md5::Md5::digest(text.as_bytes()).into())
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
