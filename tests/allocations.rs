//! The create-or-get resource `/api/v1/pool/{domain}/allocations/{sub}`
//! (docs/contract.md): `PUT` reserves and commits in one call and is safe
//! to repeat, every 2xx carries the whole object, a changed load balancer
//! moves the records (keys and DS stay), `GET` answers exactly 404 once
//! released, `DELETE` releases and then answers 204, another owner's name
//! is never adopted. Runs on SQLite and Postgres.

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;

const URL: &str = "/api/v1/pool/example.test/allocations";

fn put(srv: &PdmServer, sub: &str, body: &Value) -> Resp {
    let tok = srv.admin_token();
    srv.request(
        "PUT",
        &format!("{URL}/{sub}"),
        Some(&tok),
        Body::Json(body),
        &[],
    )
}

fn get(srv: &PdmServer, sub: &str) -> (u16, Value) {
    let tok = srv.admin_token();
    srv.get(&format!("{URL}/{sub}"), Some(&tok))
}

fn delete(srv: &PdmServer, sub: &str) -> Resp {
    let tok = srv.admin_token();
    srv.request(
        "DELETE",
        &format!("{URL}/{sub}"),
        Some(&tok),
        Body::None,
        &[],
    )
}

/// provider-http's DEFAULT up-to-date check: every field the update body
/// sends is in the answer with the same JSON value.
fn contains(answer: &Value, sent: &Value) -> bool {
    sent.as_object()
        .expect("object")
        .iter()
        .all(|(k, v)| answer.get(k) == Some(v))
}

fn a_records(srv: &PdmServer, name: &str) -> Vec<String> {
    srv.dig(name, RecordType::A).answer_data(RecordType::A)
}

fn create_get_update_delete(b: Backend) {
    let srv = start_or_skip!(b, Config::default_test());
    let body = json!({"pool": "example.test", "subdomain": "acme", "loadBalancerIP": "192.0.2.10"});
    let r = put(&srv, "acme", &body);
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.body;
    assert_eq!(created["id"], "acme.example.test", "{created}");
    assert_eq!(created["fqdn"], "acme.example.test");
    assert_eq!(created["state"], "active");
    assert_eq!(created["createdBy"], "crossplane");
    assert!(contains(&created, &body), "{created}");
    assert!(
        !created["nameservers"]
            .as_array()
            .expect("nameservers")
            .is_empty(),
        "{created}"
    );
    let ds = created["ds"].clone();
    assert!(
        !ds.as_array().expect("ds").is_empty(),
        "signed child: {created}"
    );
    let serial = created["servedSerial"].as_u64().expect("servedSerial");
    assert!(r.change_id.is_some(), "a write names its change");
    // Served before the answer (read your writes).
    assert_eq!(a_records(&srv, "www.acme.example.test"), vec!["192.0.2.10"]);

    // Repeated: 200, the same object; GET: the same, and "up to date".
    let again = put(&srv, "acme", &body);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, created);
    let (st, got) = get(&srv, "acme");
    assert_eq!(st, 200, "{got}");
    assert_eq!(got, created);
    assert!(contains(&got, &body));

    // A new load balancer moves the records; keys and DS stay.
    let moved = json!({"pool": "example.test", "subdomain": "acme", "loadBalancerIP": "192.0.2.20",
                       "consoleLoadBalancerIP": "192.0.2.30"});
    let r = put(&srv, "acme", &moved);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(contains(&r.body, &moved), "{}", r.body);
    assert_eq!(r.body["ds"], ds, "the DS does not change");
    assert!(r.body["servedSerial"].as_u64() > Some(serial), "{}", r.body);
    assert_eq!(a_records(&srv, "acme.example.test"), vec!["192.0.2.20"]);
    assert_eq!(
        a_records(&srv, "console.acme.example.test"),
        vec!["192.0.2.30"]
    );
    // IPv6: the A records go, AAAA come.
    let v6 = json!({"loadBalancerIP": "2001:db8::1"});
    let r = put(&srv, "acme", &v6);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(a_records(&srv, "acme.example.test").is_empty());
    let aaaa = srv.dig("www.acme.example.test", RecordType::AAAA);
    assert_eq!(aaaa.answer_data(RecordType::AAAA), vec!["2001:db8::1"]);
    let (_, listed) = srv.get("/api/v1/pool/example.test/list", Some(&srv.admin_token()));
    assert_eq!(listed["allocations"][0]["loadBalancerIP"], "2001:db8::1");

    // DELETE releases; then GET 404, DELETE 204, the zone is gone.
    let r = delete(&srv, "acme");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["freed"]["state"], "released", "{}", r.body);
    let (st, body404) = get(&srv, "acme");
    assert_error(st, &body404, 404, "not-found");
    let r = delete(&srv, "acme");
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(srv
        .dig("www.acme.example.test", RecordType::A)
        .is_nxdomain());
    // And it can be made again.
    let r = put(&srv, "acme", &body);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.body["ds"], ds, "a new allocation has new keys");
}

fn other_owners_are_never_adopted(b: Backend) {
    let srv = start_or_skip!(b, Config::default_test());
    // The signup wizard's hold (createdBy catalyst-api).
    let token = srv.reserve_ok("example.test", "held");
    let body = json!({"loadBalancerIP": "192.0.2.10"});
    let r = put(&srv, "held", &body);
    assert_error(r.status, &r.body, 409, "owned-by-another");
    let (st, b404) = get(&srv, "held");
    assert_error(st, &b404, 404, "not-found");
    // With the hold's token the PUT commits it (and keeps its owner).
    let wrong = put(
        &srv,
        "held",
        &json!({"loadBalancerIP": "192.0.2.10", "reservationToken": "nope"}),
    );
    assert_error(wrong.status, &wrong.body, 403, "token-mismatch");
    let r = put(
        &srv,
        "held",
        &json!({"loadBalancerIP": "192.0.2.10", "reservationToken": token}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["createdBy"], "catalyst-api");
    // Active and someone else's: refused, not adopted or moved.
    let r = put(
        &srv,
        "held",
        &json!({"loadBalancerIP": "192.0.2.99", "createdBy": "crossplane"}),
    );
    assert_error(r.status, &r.body, 409, "owned-by-another");
    assert_eq!(a_records(&srv, "held.example.test"), vec!["192.0.2.10"]);
    // Its owner may.
    let r = put(
        &srv,
        "held",
        &json!({"loadBalancerIP": "192.0.2.99", "createdBy": "catalyst-api"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

fn bad_input_is_refused(b: Backend) {
    let srv = start_or_skip!(b, Config::default_test());
    let tok = srv.admin_token();
    let r = put(&srv, "-bad-", &json!({"loadBalancerIP": "192.0.2.1"}));
    assert_error(r.status, &r.body, 422, "invalid-format");
    let r = put(&srv, "acme", &json!({}));
    assert_error(r.status, &r.body, 422, "missing-lb-ip");
    let r = put(&srv, "acme", &json!({"loadBalancerIP": "nope"}));
    assert_error(r.status, &r.body, 422, "invalid-lb-ip");
    let r = put(
        &srv,
        "acme",
        &json!({"subdomain": "other", "loadBalancerIP": "192.0.2.1"}),
    );
    assert_error(r.status, &r.body, 422, "path-mismatch");
    let r = put(
        &srv,
        "acme",
        &json!({"pool": "other.test", "loadBalancerIP": "192.0.2.1"}),
    );
    assert_error(r.status, &r.body, 422, "path-mismatch");
    let r = put(&srv, "api", &json!({"loadBalancerIP": "192.0.2.1"}));
    assert_error(r.status, &r.body, 409, "reserved");
    let r = srv.request(
        "PUT",
        &format!("{URL}/acme"),
        Some(&tok),
        Body::Raw(b"{not json"),
        &[],
    );
    assert_error(r.status, &r.body, 400, "invalid-json");
    let r = srv.request(
        "PUT",
        &format!("{URL}/acme"),
        None,
        Body::Json(&json!({"loadBalancerIP": "192.0.2.1"})),
        &[],
    );
    assert_error(r.status, &r.body, 401, "unauthorized");
    let other = srv.token_with_scope("pool:other.test");
    let r = srv.request(
        "PUT",
        &format!("{URL}/acme"),
        Some(&other),
        Body::Json(&json!({"loadBalancerIP": "192.0.2.1"})),
        &[],
    );
    assert_error(r.status, &r.body, 403, "forbidden");
    let (st, body) = srv.get("/api/v1/pool/nope.test/allocations/acme", Some(&tok));
    assert_error(st, &body, 422, "unsupported-pool");
    // Nothing was created by any of these.
    let (st, _) = get(&srv, "acme");
    assert_eq!(st, 404);
}

fn concurrent_puts_make_one_allocation(b: Backend) {
    let srv = start_or_skip!(b, Config::default_test());
    let body = json!({"loadBalancerIP": "192.0.2.10"});
    let answers: Vec<Resp> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| put(&srv, "race", &body)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let created = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers
            .iter()
            .map(|r| (r.status, &r.text))
            .collect::<Vec<_>>()
    );
    assert!(
        answers.iter().all(|r| r.status == 201 || r.status == 200),
        "{:?}",
        answers
            .iter()
            .map(|r| (r.status, &r.text))
            .collect::<Vec<_>>()
    );
    let first = &answers[0].body;
    assert!(answers.iter().all(|r| r.body["ds"] == first["ds"]));
}

backend_tests!(
    create_get_update_delete,
    other_owners_are_never_adopted,
    bad_input_is_refused,
    concurrent_puts_make_one_allocation
);
