//! What each agent type does with a task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use q2o_common::domain::{AgentType, Task, TaskResult};
use q2o_common::store::{CacheType, Store, StoreError};

use crate::inter_agent::{InterAgentError, QaClient, ReviewRequest};
use crate::lane::Lane;
use crate::llm::{Completion, LlmSimulator};
use crate::metrics::AgentMetrics;
use crate::review::review;
use crate::templates::render;

/// Everything agent work needs: the store (cache), the simulated LLM, the QA client.
#[derive(Debug)]
pub(crate) struct Work {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) llm: LlmSimulator,
    pub(crate) qa: QaClient,
    /// Where the QA client's calls run (`lane`).
    pub(crate) lane: tokio::runtime::Handle,
    pub(crate) metrics: AgentMetrics,
    pub(crate) research_ttl: Duration,
    /// The model each agent type's LLM calls use.
    pub(crate) models: HashMap<AgentType, String>,
    /// The model of agent types that run no pool here (direct gRPC/REST calls).
    pub(crate) fallback_model: String,
}

/// A research answer.
#[derive(Debug)]
pub(crate) struct Research {
    pub(crate) summary: String,
    pub(crate) cache_hit: bool,
    pub(crate) completion: Option<Completion>,
}

/// Normalises a topic so that trivially different phrasings share a cache entry.
fn research_key(topic: &str) -> String {
    let normal = topic.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ");
    sha1_smol::Sha1::from(normal.as_bytes()).digest().to_string()
}

impl Work {
    pub(crate) fn model(&self, agent: AgentType) -> &str {
        self.models.get(&agent).unwrap_or(&self.fallback_model)
    }

    /// Runs `task` as its agent type does. An `Err` is the task's failure reason.
    pub(crate) async fn perform(&self, task: &Task) -> Result<TaskResult, String> {
        let agent = task.agent_type;
        if agent == AgentType::Researcher {
            let research = self.research(&task.description).await.map_err(|e| format!("research cache: {e}"))?;
            return Ok(TaskResult {
                summary: research.summary.lines().next().unwrap_or_default().to_owned(),
                language: "markdown".into(),
                code: research.summary,
                prompt_tokens: research.completion.map_or(0, |c| c.prompt_tokens),
                completion_tokens: research.completion.map_or(0, |c| c.completion_tokens),
                cost_dollars: research.completion.map_or(0.0, |c| c.cost_dollars),
                cache_hit: research.cache_hit,
                review: None,
            });
        }
        let completion = self.llm.complete(self.model(agent), &task.description).await;
        let artifact = render(agent, &task.description);
        let review = match agent {
            AgentType::Coder => {
                let request = ReviewRequest {
                    task_id: task.id.to_string(),
                    language: artifact.language.to_owned(),
                    code: artifact.code.clone(),
                };
                let (qa, metrics) = (self.qa.clone(), self.metrics.clone());
                let call = async move { qa.review(agent, request, &metrics).await };
                let review = Lane::run(&self.lane, call)
                    .await
                    .unwrap_or(Err(InterAgentError::Stopped))
                    .map_err(|e| format!("QA review over {} failed: {e}", self.qa.protocol()))?;
                Some(review)
            }
            AgentType::Qa => Some(review(artifact.language, &artifact.code, "local")),
            _ => None,
        };
        let lines = artifact.code.lines().count();
        Ok(TaskResult {
            summary: format!("{agent} agent produced {lines} lines of {}", artifact.language),
            language: artifact.language.to_owned(),
            code: artifact.code,
            prompt_tokens: completion.prompt_tokens,
            completion_tokens: completion.completion_tokens,
            cost_dollars: completion.cost_dollars,
            cache_hit: false,
            review,
        })
    }

    /// Answers a research question from the cache, or the LLM on a miss.
    pub(crate) async fn research(&self, topic: &str) -> Result<Research, StoreError> {
        let key = research_key(topic);
        if let Some(summary) = self.store.cache_get(CacheType::Research, &key).await? {
            self.metrics.cache_lookup(CacheType::Research, true);
            return Ok(Research { summary, cache_hit: true, completion: None });
        }
        self.metrics.cache_lookup(CacheType::Research, false);
        let completion = self.llm.complete(self.model(AgentType::Researcher), topic).await;
        let summary = render(AgentType::Researcher, topic).code;
        self.store.cache_put(CacheType::Research, &key, &summary, self.research_ttl).await?;
        Ok(Research { summary, cache_hit: false, completion: Some(completion) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn research_keys_ignore_case_and_spacing() {
        assert_eq!(research_key("Rust  async\tRuntimes"), research_key("rust async runtimes"));
        assert_ne!(research_key("rust"), research_key("go"));
    }
}
