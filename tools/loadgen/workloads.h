// The plan's SLO scenarios as engine workloads, and the seeding that prepares them.
//
// The HTTP API they speak (commentd's /v1):
//   GET    /v1/videos/{video}/comments?limit=20[&cursor=C]  -> 200 {..., "next_cursor": "C"|null}
//   POST   /v1/videos/{video}/comments  {"content": "..."}  -> 201 {"id": "...", ...}
//   PUT    /v1/comments/{id}/reaction   {"type": "like"|"dislike"}
//   DELETE /v1/comments/{id}/reaction
// every request with "Authorization: Bearer <HS256 JWT>" when a secret is given.
//
// Each request's choices derive from (seed, request index) plus the shard's recent history
// (cursors it saw, reactions it made), so runs are repeatable for one seed and thread count.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine.h"
#include "random.h"

namespace commentd::loadgen {

enum class Scenario { viral, mixed, read_hot, write_heavy, baseline };
std::optional<Scenario> parse_scenario(std::string_view name);
const char* to_string(Scenario s);

// Request categories a scenario mixes; rates are per category.
enum Category : size_t { cat_read = 0, cat_comment = 1, cat_reaction = 2, cat_count = 3 };

// The operations every scenario reports (some stay at zero).
enum Op : size_t {
  op_read_page = 0,       // first page, newest first
  op_read_next_page = 1,  // a later page, by a cursor seen earlier
  op_post_comment = 2,
  op_put_reaction = 3,     // like, dislike, or a switch between them
  op_delete_reaction = 4,  // remove
  op_get_root = 5,         // baseline: GET /
  op_count = 6,
};
const char* op_name(size_t op);
bool is_read_op(size_t op);  // the SLO's "read" set; everything else but get_root is a write

// The per-category default rates (requests/s) of a scenario.
std::array<double, cat_count> default_rates(Scenario s);

// Resolves the per-category rates. `given` are the --*-rate flags (negative = not given),
// `total` is --rate (negative = not given). Without --rate, a category not given keeps its
// default rate; with it, the categories not given share what the given ones leave in
// proportion to their defaults. Throws std::invalid_argument if the given rates exceed
// --rate or nothing is left to send.
std::array<double, cat_count> resolve_rates(Scenario s, const std::array<double, cat_count>& given,
                                            double total);

struct ScenarioConfig {
  Scenario scenario = Scenario::viral;
  std::array<double, cat_count> rates{};  // resolved; used as weights in closed loop
  uint64_t seed = 1;
  uint64_t users = 10000;
  uint64_t videos = 1;              // mixed/write-heavy: how many; viral/read-hot: 1
  std::string video;                // viral/read-hot: the video id (else derived from seed)
  double comment_zipf = 1.0;        // reaction targets: the Zipf exponent over comments
  double video_zipf = 1.0;          // mixed/write-heavy: over videos
  double next_page_fraction = 0.2;  // reads that follow a cursor, when one is known
  uint32_t page_limit = 20;
  std::string jwt_secret;  // empty: no Authorization header
  std::string host_header;
};

// Immutable during a run; shared by every shard.
struct ScenarioData {
  ScenarioConfig cfg;
  std::vector<std::string> video_ids;
  std::vector<std::string> first_page_paths;             // per video
  std::vector<std::string> comment_paths;                // per video: .../comments
  std::vector<std::vector<std::string>> reaction_paths;  // per video, per seeded comment
  std::vector<std::string> tokens;                       // per user; empty strings if no secret
  std::unique_ptr<ZipfSampler> video_sampler;
  std::vector<std::shared_ptr<ZipfSampler>> comment_samplers;  // per video; null if none
};

// Builds ids, tokens and paths; comment ids come from seeding (add_comments) later.
std::shared_ptr<ScenarioData> make_scenario_data(const ScenarioConfig& cfg);
// Adds seeded comment ids (per video) and rebuilds the reaction samplers. The hot head of
// the Zipf order is a seeded shuffle of the comments, so hot ones spread over pages.
void add_comments(ScenarioData& data, const std::vector<std::vector<std::string>>& ids_per_video);

// The timed workload of a scenario.
std::unique_ptr<Workload> make_scenario_workload(std::shared_ptr<const ScenarioData> data);

// Seeding: POSTs spread round-robin over the scenario's videos and users (run it closed loop
// with max_requests = how many); collects the ids the server returns. Not part of results.
class SeedWorkload : public Workload {
 public:
  explicit SeedWorkload(std::shared_ptr<const ScenarioData> data);
  std::vector<std::string> op_names() const override { return {"seed_comment"}; }
  std::unique_ptr<WorkloadShard> make_shard(size_t shard_index) override;
  // After the run: the ids created, per video.
  std::vector<std::vector<std::string>> collected() const;
  struct Sink;  // one shard's collected ids (defined in workloads.cpp)

 private:
  std::shared_ptr<const ScenarioData> data_;
  std::vector<std::shared_ptr<Sink>> sinks_;
};

}  // namespace commentd::loadgen
