//! The index's query behaviour, on an index in a scratch directory.

use q2o_search::index::{DocKind, Filters, IndexDoc, SearchIndex};
use q2o_search::metrics::SearchMetrics;
use q2o_search::query_plan::QueryPlan;
use q2o_testkit::ScratchDir;
use time::OffsetDateTime;

fn doc(kind: DocKind, id: &str, tenant: &str, name: &str, description: &str, code: &str, agent: &str) -> IndexDoc {
    IndexDoc {
        kind,
        id: id.into(),
        tenant: tenant.into(),
        project_id: format!("p-{id}"),
        name: name.into(),
        objective: String::new(),
        description: description.into(),
        tags: vec!["billing".into()],
        code: code.into(),
        language: if code.is_empty() { String::new() } else { "rust".into() },
        agent_type: agent.into(),
        status: if kind == DocKind::Code { "completed".into() } else { "active".into() },
        created: OffsetDateTime::from_unix_timestamp(1_793_000_000).unwrap(),
    }
}

fn index(dir: &ScratchDir) -> SearchIndex {
    SearchIndex::open(dir.path(), SearchMetrics::new(&prometheus::Registry::new())).unwrap()
}

fn search(index: &SearchIndex, tenant: &str, q: &str) -> Vec<String> {
    let results = index.search(tenant, &QueryPlan::parse(q).unwrap(), &Filters::default(), 1, 10).unwrap();
    results.hits.into_iter().map(|h| h.id).collect()
}

#[test]
fn boosts_typos_tenants_facets_highlights_and_pages() {
    let dir = ScratchDir::new("search-index").unwrap();
    let index = index(&dir);
    index.upsert(&doc(DocKind::Project, "a", "acme", "Ledger service", "tracks invoices", "", ""), None).unwrap();
    index.upsert(&doc(DocKind::Project, "b", "acme", "Reporting", "monthly ledger exports", "", ""), None).unwrap();
    index
        .upsert(&doc(DocKind::Code, "c", "acme", "Reporting", "parser", "fn reconcile_ledger() {}", "coder"), None)
        .unwrap();
    index.upsert(&doc(DocKind::Project, "z", "globex", "Ledger clone", "ledger", "", ""), None).unwrap();
    assert_eq!(index.commit().unwrap(), 4);

    // name^3 beats description; the other tenant's ledger never shows.
    let ids = search(&index, "acme", "ledger");
    assert_eq!(ids.first().map(String::as_str), Some("a"), "{ids:?}");
    assert!(ids.contains(&"b".to_string()));
    assert!(!ids.contains(&"z".to_string()));
    assert_eq!(search(&index, "globex", "ledger"), ["z"]);

    // One typo still finds it.
    assert_eq!(search(&index, "acme", "ledgr").first().map(String::as_str), Some("a"));
    assert_eq!(search(&index, "acme", "invoces"), ["a"]);
    // Exclusion and field filters.
    assert!(!search(&index, "acme", "ledger -invoices").contains(&"a".to_string()));
    assert_eq!(search(&index, "acme", "ledger agent_type:coder"), ["c"]);

    let plan = QueryPlan::parse("ledger").unwrap();
    let results = index.search("acme", &plan, &Filters::default(), 1, 2).unwrap();
    assert_eq!((results.total, results.hits.len()), (3, 2));
    assert_eq!(results.facets["status"]["active"], 2);
    assert_eq!(results.facets["status"]["completed"], 1);
    assert_eq!(results.facets["agent_type"]["coder"], 1);
    assert_eq!(results.facets["month"].len(), 1);
    let second = index.search("acme", &plan, &Filters::default(), 2, 2).unwrap();
    assert_eq!(second.hits.len(), 1);
    let only_code = Filters { agent_type: Some("coder".into()), ..Filters::default() };
    assert_eq!(index.search("acme", &plan, &only_code, 1, 10).unwrap().total, 1);

    let code_hit = results.hits.iter().chain(&second.hits).find(|h| h.id == "c").unwrap();
    assert!(code_hit.highlights["code"].contains("<b>"), "{:?}", code_hit.highlights);

    assert_eq!(index.autocomplete("acme", "led", 5).unwrap(), ["Ledger service"]);
    assert_eq!(index.autocomplete("acme", "rep", 5).unwrap(), ["Reporting"]);
    assert!(index.autocomplete("acme", "clo", 5).unwrap().is_empty(), "another tenant's name");
}

#[test]
fn upserts_replace_and_offsets_survive_a_reopen() {
    let dir = ScratchDir::new("search-reopen").unwrap();
    {
        let index = index(&dir);
        let mut d = doc(DocKind::Project, "a", "acme", "Old name", "", "", "");
        index.upsert(&d, Some((0, 41, OffsetDateTime::now_utc()))).unwrap();
        d.name = "New name".into();
        index.upsert(&d, Some((1, 7, OffsetDateTime::now_utc()))).unwrap();
        index.advance(2, 3);
        index.commit().unwrap();
        assert_eq!(search(&index, "acme", "name"), ["a"], "one document, not two");
        assert!(search(&index, "acme", "old").is_empty());
    }
    let reopened = index(&dir);
    let offsets = reopened.resume_offsets();
    assert_eq!((offsets[&0], offsets[&1], offsets[&2]), (42, 8, 4));
    assert_eq!(search(&reopened, "acme", "new"), ["a"]);
}

#[test]
fn a_repeated_question_is_answered_as_computed_until_a_commit_changes_the_answer() {
    let (dir, computed_dir) = (ScratchDir::new("search-cached").unwrap(), ScratchDir::new("search-computed").unwrap());
    let (cached, computed) = (index(&dir), index(&computed_dir).without_result_cache());
    let both = [&cached, &computed];
    let ledger = |id: &str| doc(DocKind::Project, id, "acme", "Ledger", "tracks invoices", "", "");
    for index in both {
        index.upsert(&ledger("a"), None).unwrap();
        index.commit().unwrap();
    }
    let ask = |index: &SearchIndex| {
        let results = index.search("acme", &QueryPlan::parse("ledger").unwrap(), &Filters::default(), 1, 10).unwrap();
        let mut hits: Vec<_> = results.hits.iter().map(|h| (h.id.clone(), h.score, h.highlights.clone())).collect();
        // Equal scores tie by each index's own segment order: compare the set.
        hits.sort_by(|a, b| a.0.cmp(&b.0));
        (results.total, hits)
    };
    let first = ask(&cached);
    assert_eq!(first, ask(&computed));
    assert_eq!(ask(&cached), first, "asked again");
    for index in both {
        index.upsert(&ledger("b"), None).unwrap();
    }
    assert_eq!(ask(&cached).0, 1, "not committed: not visible, cached or not");
    for index in both {
        index.commit().unwrap();
    }
    let after = ask(&cached);
    assert_eq!(after.0, 2, "the commit's generation is answered afresh");
    assert_eq!(after, ask(&computed));
}

#[test]
fn a_projects_document_sent_again_unchanged_is_not_indexed_again_and_a_changed_one_is() {
    let dir = ScratchDir::new("search-index").unwrap();
    let index = index(&dir);
    let project = doc(DocKind::Project, "a", "acme", "Ledger service", "tracks invoices", "", "");
    index.upsert(&project, Some((0, 1, OffsetDateTime::now_utc()))).unwrap();
    assert_eq!(index.commit().unwrap(), 1);

    // Every completed task of the project brings its document again.
    index.upsert(&project, Some((0, 2, OffsetDateTime::now_utc()))).unwrap();
    index.upsert(&project, Some((0, 3, OffsetDateTime::now_utc()))).unwrap();
    assert_eq!(index.commit().unwrap(), 0, "nothing to index");
    assert_eq!(index.resume_offsets().get(&0), Some(&4), "the log position still moves on");
    assert_eq!(search(&index, "acme", "ledger"), ["a"]);

    let renamed = IndexDoc { name: "Accounts service".into(), ..project.clone() };
    index.upsert(&renamed, None).unwrap();
    assert_eq!(index.commit().unwrap(), 1);
    assert_eq!(search(&index, "acme", "accounts"), ["a"]);
    assert!(search(&index, "acme", "ledger").is_empty(), "the old name is gone");
    // Back to the first content: a change too, so indexed again.
    index.upsert(&project, None).unwrap();
    assert_eq!(index.commit().unwrap(), 1);
    assert_eq!(search(&index, "acme", "ledger"), ["a"]);
    // Code documents are indexed whenever they come.
    let code = doc(DocKind::Code, "c", "acme", "Ledger service", "parser", "fn reconcile() {}", "coder");
    index.upsert(&code, None).unwrap();
    index.upsert(&code, None).unwrap();
    assert_eq!(index.commit().unwrap(), 2);
}
