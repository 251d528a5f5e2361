-- wrk script: POST /api/v1/projects/{id}/tasks with a session token.
-- The token and project come from the environment (set by submit_task.sh).
local token = os.getenv("Q2O_TOKEN")
local project = os.getenv("Q2O_PROJECT")

wrk.method = "POST"
wrk.path = "/api/v1/projects/" .. project .. "/tasks"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.body = '{"agent_type":"documentation","description":"write the operations runbook"}'

function done(summary, latency, requests)
  io.write(string.format("requests/s: %.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("non-2xx: %d, errors: %d\n", summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  for _, p in ipairs({50, 90, 95, 99}) do
    io.write(string.format("p%d: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
