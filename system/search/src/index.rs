//! The tantivy index of projects and generated code, per tenant.
//!
//! Two kinds of document share one schema: a *project* (name, objective,
//! description, tags) and a *code* artefact (the task description and the code an
//! agent generated). Both are upserted by id, so indexing an event twice changes
//! nothing. Each commit stores the activity log offsets it covers in its payload:
//! after a restart, indexing resumes exactly where the index on disk ends.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, PhraseQuery, Query, RegexQuery, TermQuery};
use tantivy::schema::{
    FAST, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, TantivyDocument, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Term};
use time::OffsetDateTime;

use crate::fuzzy::{Automata, variants};
use crate::metrics::SearchMetrics;
use crate::query_plan::QueryPlan;
use crate::result_cache::{Answer, Question, ResultCache, Source};

/// Text fields searched by plain words, with their boosts.
const BOOSTS: &[(&str, f32)] = &[("name", 3.0), ("objective", 2.0), ("description", 1.0), ("tags", 1.0), ("code", 1.0)];

/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: usize = 50;
/// Deepest result a client may page to.
pub const MAX_RESULT_DEPTH: usize = 1000;

/// The last page a search may ask for: at the largest page size, as deep as
/// [`MAX_RESULT_DEPTH`]. A bound on the page alone, so that the API's schema
/// can state it (a bound on `page` × `size` spans two parameters).
pub const MAX_PAGE: usize = MAX_RESULT_DEPTH / MAX_PAGE_SIZE;

/// The index could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// tantivy failed.
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The data directory could not be created.
    #[error("cannot create index directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<tantivy::directory::error::OpenDirectoryError> for IndexError {
    fn from(err: tantivy::directory::error::OpenDirectoryError) -> Self {
        IndexError::Tantivy(err.into())
    }
}

/// A document to index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexDoc {
    /// `project` or `code`.
    pub kind: DocKind,
    /// Unique within its kind (project id or task id).
    pub id: String,
    /// The owning tenant.
    pub tenant: String,
    /// The project it belongs to.
    pub project_id: String,
    /// Project name.
    pub name: String,
    /// Project objective.
    pub objective: String,
    /// Project or task description.
    pub description: String,
    /// Project tags.
    pub tags: Vec<String>,
    /// Generated code (code documents).
    pub code: String,
    /// Language of `code`.
    pub language: String,
    /// Agent type that produced it (code documents).
    pub agent_type: String,
    /// Project status, or `completed` for code.
    pub status: String,
    /// When it was created.
    pub created: OffsetDateTime,
}

/// What a document describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// A project.
    Project,
    /// An agent's generated artefact.
    Code,
}

impl DocKind {
    fn as_str(self) -> &'static str {
        match self {
            DocKind::Project => "project",
            DocKind::Code => "code",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Fields {
    doc_id: Field,
    kind: Field,
    tenant: Field,
    project_id: Field,
    name: Field,
    objective: Field,
    description: Field,
    tags: Field,
    code: Field,
    language: Field,
    agent_type: Field,
    status: Field,
    created: Field,
    facets: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        doc_id: b.add_text_field("doc_id", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        tenant: b.add_text_field("tenant", STRING),
        project_id: b.add_text_field("project_id", STRING | STORED),
        name: b.add_text_field("name", TEXT | STORED),
        objective: b.add_text_field("objective", TEXT | STORED),
        description: b.add_text_field("description", TEXT | STORED),
        tags: b.add_text_field("tags", TEXT | STORED),
        code: b.add_text_field("code", TEXT | STORED),
        language: b.add_text_field("language", STRING | STORED),
        agent_type: b.add_text_field("agent_type", STRING | STORED),
        status: b.add_text_field("status", STRING | STORED),
        created: b.add_i64_field("created", INDEXED | STORED | FAST),
        facets: b.add_facet_field("facets", FacetOptions::default()),
    };
    (b.build(), fields)
}

/// Filters from the API's facet parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    /// Only this agent type.
    pub agent_type: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this month (`YYYY-MM`).
    pub month: Option<String>,
}

/// One result.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    /// What it is.
    pub kind: String,
    /// Project or task id.
    pub id: String,
    /// Its project.
    pub project_id: String,
    /// Project name.
    pub name: String,
    /// Agent type (code), empty for projects.
    pub agent_type: String,
    /// Language (code), empty for projects.
    pub language: String,
    /// Status.
    pub status: String,
    /// BM25 score with boosts.
    pub score: f32,
    /// HTML fragments with `<b>` around matched words, by field.
    pub highlights: BTreeMap<String, String>,
}

/// A page of results with facet counts over all matches.
#[derive(Debug, Serialize)]
pub struct SearchResults {
    /// Matches in total.
    pub total: usize,
    /// This page (1-based).
    pub page: usize,
    /// Page size.
    pub size: usize,
    /// Milliseconds spent in the index.
    pub took_ms: f64,
    /// This page's hits.
    pub hits: Vec<Hit>,
    /// Counts by facet (`status`, `agent_type`, `month`) and value.
    pub facets: BTreeMap<String, BTreeMap<String, u64>>,
    /// What of the query was left out or read otherwise, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

#[derive(Debug, Default)]
struct Pending {
    docs: usize,
    event_times: Vec<OffsetDateTime>,
    /// Next offset to read, by partition: covers everything added so far.
    offsets: HashMap<i32, i64>,
}

/// The index, its writer and its reader.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    pending: Mutex<Pending>,
    dir: PathBuf,
    metrics: SearchMetrics,
    /// One-typo automata of recent query words.
    automata: Automata,
    /// Answers of the searcher's generation; `None` computes every search.
    answers: Option<ResultCache>,
    /// What each project's document in the writer holds, as a fingerprint
    /// by project id. Every completed task brings its project's document
    /// again, nearly always unchanged, and replacing a document with itself
    /// cost a delete, an add, and the merges that carry both.
    projects: Mutex<HashMap<String, u64>>,
}

/// Project fingerprints held at most; past it they start over, and a
/// project's next document is indexed again.
const PROJECTS_HELD: usize = 1_000_000;

/// A document's content as 64 bits: two different documents of one project
/// share one with a probability of about 2^-64.
fn fingerprint(doc: &IndexDoc) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    doc.hash(&mut hasher);
    hasher.finish()
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// tantivy's log merge policy, its smallest level at 1,000 documents instead
/// of 10,000. Every segment under the smallest level's size counts as one
/// level, and a level is merged once it holds 8 segments: with commits of
/// tens to hundreds of documents every 2 s, the growing segment was merged
/// again every seven commits until it reached about 16,800 documents, so
/// merging cost more the longer a run went. Counted with
/// `benches/callgrind`'s method, 120-170 s into a run of 1,000 phase2
/// users: merges 1,376 M -> 445 M instructions, queries 745 M -> 802 M (more
/// segments to search), 575,000 -> 430,000 instructions per request. At
/// 10,000 users, whose commits are hundreds of documents, CPU time over a
/// 2-minute hold did not change (50.1 against 49.4 µs per request).
fn merge_policy() -> tantivy::indexer::LogMergePolicy {
    let mut policy = tantivy::indexer::LogMergePolicy::default();
    policy.set_min_layer_size(1_000);
    policy
}

fn month(at: OffsetDateTime) -> String {
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it if there is none.
    pub fn open(dir: &Path, metrics: SearchMetrics) -> Result<SearchIndex, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Dir { path: dir.to_owned(), source })?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        // One indexing thread: the machine's cores are for serving.
        let writer: IndexWriter = index.writer_with_num_threads(1, 50_000_000)?;
        writer.set_merge_policy(Box::new(merge_policy()));
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let offsets = committed_offsets(&index)?;
        let search = SearchIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
            pending: Mutex::new(Pending { offsets, ..Pending::default() }),
            dir: dir.to_owned(),
            metrics,
            automata: Automata::default(),
            answers: Some(ResultCache::default()),
            projects: Mutex::default(),
        };
        search.update_size_metrics();
        Ok(search)
    }

    /// Computes every search instead of keeping answers until the next
    /// commit: for measuring what a query costs.
    pub fn without_result_cache(mut self) -> Self {
        self.answers = None;
        self
    }

    /// The log offsets the index on disk covers: where indexing resumes.
    pub fn resume_offsets(&self) -> HashMap<i32, i64> {
        self.pending.lock().expect("never poisoned").offsets.clone()
    }

    /// Adds or replaces a document. `source` is the log position it came from and
    /// the event's time (for the indexing-lag metric). A project's document
    /// equal to the one already in the writer is left as it is.
    pub fn upsert(&self, doc: &IndexDoc, source: Option<(i32, i64, OffsetDateTime)>) -> Result<(), IndexError> {
        if doc.kind != DocKind::Project {
            return self.replace(doc, source);
        }
        let print = fingerprint(doc);
        // Held until the writer has the document, so that the fingerprints
        // and the writer agree when two upserts of a project race.
        let mut projects = self.projects.lock().expect("never poisoned");
        if projects.get(&doc.id) == Some(&print) {
            if let Some((partition, offset, _)) = source {
                self.advance(partition, offset);
            }
            return Ok(());
        }
        self.replace(doc, source)?;
        if projects.len() >= PROJECTS_HELD {
            projects.clear();
        }
        projects.insert(doc.id.clone(), print);
        Ok(())
    }

    fn replace(&self, doc: &IndexDoc, source: Option<(i32, i64, OffsetDateTime)>) -> Result<(), IndexError> {
        let f = &self.fields;
        let doc_id = format!("{}:{}", doc.kind.as_str(), doc.id);
        let mut d = TantivyDocument::default();
        d.add_text(f.doc_id, &doc_id);
        d.add_text(f.kind, doc.kind.as_str());
        d.add_text(f.tenant, &doc.tenant);
        d.add_text(f.project_id, &doc.project_id);
        d.add_text(f.name, &doc.name);
        d.add_text(f.objective, &doc.objective);
        d.add_text(f.description, &doc.description);
        for tag in &doc.tags {
            d.add_text(f.tags, tag);
        }
        d.add_text(f.code, &doc.code);
        d.add_text(f.language, &doc.language);
        d.add_text(f.agent_type, &doc.agent_type);
        d.add_text(f.status, &doc.status);
        d.add_i64(f.created, doc.created.unix_timestamp());
        d.add_facet(f.facets, tantivy::schema::Facet::from_path(["status", doc.status.as_str()]));
        d.add_facet(f.facets, tantivy::schema::Facet::from_path(["month", month(doc.created).as_str()]));
        if !doc.agent_type.is_empty() {
            d.add_facet(f.facets, tantivy::schema::Facet::from_path(["agent_type", doc.agent_type.as_str()]));
        }
        {
            let writer = self.writer.lock().expect("never poisoned");
            writer.delete_term(Term::from_field_text(f.doc_id, &doc_id));
            writer.add_document(d)?;
        }
        let mut pending = self.pending.lock().expect("never poisoned");
        pending.docs += 1;
        if let Some((partition, offset, at)) = source {
            pending.event_times.push(at);
            let next = pending.offsets.entry(partition).or_insert(0);
            *next = (*next).max(offset + 1);
        }
        Ok(())
    }

    /// Records that the log was read up to `offset` of `partition` even though
    /// the event there produced no document (so resumption skips it too).
    pub fn advance(&self, partition: i32, offset: i64) {
        let mut pending = self.pending.lock().expect("never poisoned");
        let next = pending.offsets.entry(partition).or_insert(0);
        *next = (*next).max(offset + 1);
    }

    /// Commits pending documents (and the offsets they cover) and makes them
    /// searchable. Blocking: call from a blocking thread.
    pub fn commit(&self) -> Result<usize, IndexError> {
        let (docs, times, offsets) = {
            let mut pending = self.pending.lock().expect("never poisoned");
            if pending.docs == 0 && pending.event_times.is_empty() {
                return Ok(0);
            }
            (std::mem::take(&mut pending.docs), std::mem::take(&mut pending.event_times), pending.offsets.clone())
        };
        {
            let mut writer = self.writer.lock().expect("never poisoned");
            let mut commit = writer.prepare_commit()?;
            commit.set_payload(&serde_json::to_string(&offsets).expect("offsets serialize"));
            commit.commit()?;
        }
        self.reader.reload()?;
        let now = OffsetDateTime::now_utc();
        for at in times {
            self.metrics.indexing_lag.observe((now - at).as_seconds_f64().max(0.0));
        }
        self.metrics.indexed.inc_by(docs as u64);
        self.update_size_metrics();
        Ok(docs)
    }

    fn update_size_metrics(&self) {
        self.metrics.documents.set(self.reader.searcher().num_docs() as i64);
        let bytes: u64 = std::fs::read_dir(&self.dir)
            .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        self.metrics.size_bytes.set(bytes as i64);
    }

    fn field(&self, name: &str) -> Field {
        self.index.schema().get_field(name).expect("fields come from our own schema")
    }

    fn tenant_clause(&self, tenant: &str) -> (Occur, Box<dyn Query>) {
        let term = Term::from_field_text(self.fields.tenant, tenant);
        (Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::Basic)))
    }

    fn build(
        &self,
        searcher: &tantivy::Searcher,
        tenant: &str,
        plan: &QueryPlan,
        filters: &Filters,
    ) -> Result<BooleanQuery, IndexError> {
        let mut clauses = vec![self.tenant_clause(tenant)];
        for word in &plan.words {
            let mut any_field: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            // One typo allowed on words long enough for that to be meaningful;
            // one automaton for the word, whichever field it is matched in.
            let one_typo =
                if word.chars().count() >= 4 { Some(self.automata.one_typo(self.fields.name, word)?) } else { None };
            for &(name, boost) in BOOSTS {
                let term = Term::from_field_text(self.field(name), word);
                let exact = TermQuery::new(term, IndexRecordOption::WithFreqs);
                any_field.push((Occur::Should, Box::new(BoostQuery::new(Box::new(exact), boost * 2.0))));
                if let Some(dfa) = &one_typo {
                    // The word's variants, at the constant score FuzzyTermQuery gave them.
                    let variants: Vec<(Occur, Box<dyn Query>)> = variants(searcher, self.field(name), dfa, word)?
                        .into_iter()
                        .map(|t| {
                            (Occur::Should, Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>)
                        })
                        .collect();
                    if !variants.is_empty() {
                        let any = Box::new(BooleanQuery::new(variants));
                        any_field.push((Occur::Should, Box::new(ConstScoreQuery::new(any, boost))));
                    }
                }
            }
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any_field))));
        }
        for phrase in &plan.phrases {
            let any_field: Vec<(Occur, Box<dyn Query>)> = BOOSTS
                .iter()
                .map(|&(name, boost)| {
                    let field = self.field(name);
                    let terms = phrase.iter().map(|w| Term::from_field_text(field, w)).collect();
                    (
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(PhraseQuery::new(terms)), boost)) as Box<dyn Query>,
                    )
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any_field))));
        }
        for word in &plan.excluded {
            for &(name, _) in BOOSTS {
                let term = Term::from_field_text(self.field(name), word);
                clauses.push((Occur::MustNot, Box::new(TermQuery::new(term, IndexRecordOption::Basic))));
            }
        }
        let exact = |field: Field, value: &str| -> (Occur, Box<dyn Query>) {
            (Occur::Must, Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic)))
        };
        for (name, value) in &plan.filters {
            match name.as_str() {
                "name" | "tags" => {
                    for word in crate::query_plan::words(value) {
                        clauses.push(exact(self.field(name), &word));
                    }
                }
                _ => clauses.push(exact(self.field(name), value)),
            }
        }
        if let Some(agent) = &filters.agent_type {
            clauses.push(exact(self.fields.agent_type, agent));
        }
        if let Some(status) = &filters.status {
            clauses.push(exact(self.fields.status, status));
        }
        if let Some(month) = &filters.month {
            let facet = tantivy::schema::Facet::from_path(["month", month.as_str()]);
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(Term::from_facet(self.fields.facets, &facet), IndexRecordOption::Basic)),
            ));
        }
        Ok(BooleanQuery::new(clauses))
    }

    /// One page of `tenant`'s documents matching `plan`, with facet counts.
    pub fn search(
        &self,
        tenant: &str,
        plan: &QueryPlan,
        filters: &Filters,
        page: usize,
        size: usize,
    ) -> Result<SearchResults, IndexError> {
        let started = Instant::now();
        if plan.is_empty() {
            // Nothing understood, or exclusions alone: nothing matches.
            let took_ms = started.elapsed().as_secs_f64() * 1e3;
            let (hits, facets, ignored) = (Vec::new(), BTreeMap::new(), plan.ignored.clone());
            return Ok(SearchResults { total: 0, page, size, took_ms, hits, facets, ignored });
        }
        let searcher = self.reader.searcher();
        let generation = searcher.generation().generation_id();
        let compute = || self.answer(&searcher, tenant, plan, filters, page, size);
        let (answer, source) = match &self.answers {
            Some(answers) => {
                let question =
                    Question { tenant: tenant.to_owned(), plan: plan.clone(), filters: filters.clone(), page, size };
                answers.answer(generation, question, compute)?
            }
            None => (Arc::new(compute()?), Source::Computed),
        };
        match source {
            Source::Cache => self.metrics.result_cache_hits.inc(),
            Source::Computed => self.metrics.result_cache_misses.inc(),
        }
        let (total, hits, facets) = (answer.total, answer.hits.clone(), answer.facets.clone());
        let took = started.elapsed();
        self.metrics.query_duration.with_label_values(&["search"]).observe(took.as_secs_f64());
        let ignored = plan.ignored.clone();
        Ok(SearchResults { total, page, size, took_ms: took.as_secs_f64() * 1e3, hits, facets, ignored })
    }

    /// Computes a page of `tenant`'s documents matching `plan` on `searcher`,
    /// with facet counts over every match.
    fn answer(
        &self,
        searcher: &tantivy::Searcher,
        tenant: &str,
        plan: &QueryPlan,
        filters: &Filters,
        page: usize,
        size: usize,
    ) -> Result<Answer, IndexError> {
        let query = self.build(searcher, tenant, plan, filters)?;
        let mut facets = FacetCollector::for_field("facets");
        for facet in ["/status", "/agent_type", "/month"] {
            facets.add_facet(facet);
        }
        let top = TopDocs::with_limit(size).and_offset((page - 1) * size).order_by_score();
        let (top, total, facet_counts) = searcher.search(&query, &(top, Count, facets))?;
        let highlight_terms: BTreeMap<String, f32> =
            plan.words.iter().chain(plan.phrases.iter().flatten()).map(|w| (w.clone(), 1.0)).collect();
        let snippets = |field: Field| -> Result<SnippetGenerator, IndexError> {
            let tokenizer = self.index.tokenizer_for_field(field)?;
            Ok(SnippetGenerator::new(highlight_terms.clone(), tokenizer, field, 160))
        };
        let (description_snippets, code_snippets) = (snippets(self.fields.description)?, snippets(self.fields.code)?);
        let hits = top
            .into_iter()
            .map(|(score, address): (f32, DocAddress)| {
                let doc: TantivyDocument = searcher.doc(address)?;
                let text = |field: Field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let mut highlights = BTreeMap::new();
                for (name, generator) in [("description", &description_snippets), ("code", &code_snippets)] {
                    let snippet = generator.snippet_from_doc(&doc);
                    if !snippet.is_empty() {
                        highlights.insert(name.to_owned(), snippet.to_html());
                    }
                }
                let doc_id = text(self.fields.doc_id);
                Ok(Hit {
                    kind: text(self.fields.kind),
                    id: doc_id.split_once(':').map_or(doc_id.clone(), |(_, id)| id.to_owned()),
                    project_id: text(self.fields.project_id),
                    name: text(self.fields.name),
                    agent_type: text(self.fields.agent_type),
                    language: text(self.fields.language),
                    status: text(self.fields.status),
                    score,
                    highlights,
                })
            })
            .collect::<Result<Vec<_>, IndexError>>()?;
        let mut facets = BTreeMap::new();
        for name in ["status", "agent_type", "month"] {
            let counts: BTreeMap<String, u64> = facet_counts
                .get(&format!("/{name}"))
                .filter_map(|(facet, count)| Some((facet.to_path().last()?.to_string(), count)))
                .collect();
            facets.insert(name.to_owned(), counts);
        }
        Ok(Answer { total, hits, facets })
    }

    /// Up to `limit` distinct project names of `tenant` with a word starting with `prefix`.
    pub fn autocomplete(&self, tenant: &str, prefix: &str, limit: usize) -> Result<Vec<String>, IndexError> {
        let started = Instant::now();
        let words = crate::query_plan::words(prefix);
        let Some(last) = words.last() else { return Ok(Vec::new()) };
        let mut clauses = vec![self.tenant_clause(tenant)];
        for word in &words[..words.len() - 1] {
            let term = Term::from_field_text(self.fields.name, word);
            clauses.push((Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::Basic))));
        }
        let pattern = format!("{}.*", escape_regex(last));
        clauses.push((Occur::Must, Box::new(RegexQuery::from_pattern(&pattern, self.fields.name)?)));
        let searcher = self.reader.searcher();
        let top = searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(limit * 4).order_by_score())?;
        let mut names: Vec<String> = Vec::new();
        for (_, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(name) = doc.get_first(self.fields.name).and_then(|v| v.as_str())
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_owned());
            }
            if names.len() == limit {
                break;
            }
        }
        self.metrics.query_duration.with_label_values(&["autocomplete"]).observe(started.elapsed().as_secs_f64());
        Ok(names)
    }
}

fn committed_offsets(index: &Index) -> Result<HashMap<i32, i64>, IndexError> {
    let payload = index.load_metas()?.payload;
    Ok(payload.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or_default())
}

fn escape_regex(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}
