#include "workloads.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "http_util.h"
#include "jwt.h"

namespace commentd::loadgen {

std::optional<Scenario> parse_scenario(std::string_view name) {
  if (name == "viral") return Scenario::viral;
  if (name == "mixed") return Scenario::mixed;
  if (name == "read-hot") return Scenario::read_hot;
  if (name == "write-heavy") return Scenario::write_heavy;
  if (name == "baseline") return Scenario::baseline;
  return std::nullopt;
}

const char* to_string(Scenario s) {
  switch (s) {
    case Scenario::viral:
      return "viral";
    case Scenario::mixed:
      return "mixed";
    case Scenario::read_hot:
      return "read-hot";
    case Scenario::write_heavy:
      return "write-heavy";
    case Scenario::baseline:
      return "baseline";
  }
  return "?";
}

const char* op_name(size_t op) {
  static constexpr const char* names[op_count] = {"read_page",    "read_next_page",  "post_comment",
                                                  "put_reaction", "delete_reaction", "get_root"};
  return op < op_count ? names[op] : "?";
}

bool is_read_op(size_t op) { return op == op_read_page || op == op_read_next_page; }

std::array<double, cat_count> default_rates(Scenario s) {
  switch (s) {
    case Scenario::viral:
      return {1000, 100, 1000};  // the plan: 100 comments/s, 1000 reactions/s
    case Scenario::mixed:
      return {900, 20, 80};
    case Scenario::read_hot:
      return {1000, 0, 0};
    case Scenario::write_heavy:
      return {100, 300, 600};
    case Scenario::baseline:
      return {1000, 0, 0};
  }
  return {0, 0, 0};
}

std::array<double, cat_count> resolve_rates(Scenario s, const std::array<double, cat_count>& given,
                                            double total) {
  const auto defaults = default_rates(s);
  std::array<double, cat_count> rates{};
  double given_sum = 0, free_default_sum = 0;
  for (size_t c = 0; c < cat_count; ++c) {
    if (given[c] >= 0) {
      rates[c] = given[c];
      given_sum += given[c];
    } else {
      free_default_sum += defaults[c];
    }
  }
  if (total < 0) {
    for (size_t c = 0; c < cat_count; ++c) {
      if (given[c] < 0) rates[c] = defaults[c];
    }
  } else {
    if (given_sum > total * (1 + 1e-9)) throw std::invalid_argument("per-op rates exceed --rate");
    const double left = total - given_sum;
    for (size_t c = 0; c < cat_count; ++c) {
      if (given[c] < 0) rates[c] = free_default_sum > 0 ? left * defaults[c] / free_default_sum : 0;
    }
  }
  if (std::accumulate(rates.begin(), rates.end(), 0.0) <= 0) {
    throw std::invalid_argument("the scenario's rates add up to nothing");
  }
  return rates;
}

std::shared_ptr<ScenarioData> make_scenario_data(const ScenarioConfig& cfg) {
  auto data = std::make_shared<ScenarioData>();
  data->cfg = cfg;
  const bool many = cfg.scenario == Scenario::mixed || cfg.scenario == Scenario::write_heavy;
  const uint64_t videos = many ? std::max<uint64_t>(cfg.videos, 1) : 1;
  data->cfg.videos = videos;
  for (uint64_t v = 0; v < videos; ++v) {
    const bool named = !many && !cfg.video.empty();
    data->video_ids.push_back(named ? cfg.video
                                    : uuid_from_key(mix64(cfg.seed) ^ (0x71de0000ULL + v)));
    const std::string base = "/v1/videos/" + data->video_ids.back() + "/comments";
    data->comment_paths.push_back(base);
    data->first_page_paths.push_back(base + "?limit=" + std::to_string(cfg.page_limit));
  }
  data->reaction_paths.resize(videos);
  data->comment_samplers.resize(videos);
  data->video_sampler = std::make_unique<ZipfSampler>(videos, cfg.video_zipf);
  const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count() +
                   86400;
  const uint64_t users = std::max<uint64_t>(cfg.users, 1);
  data->cfg.users = users;
  data->tokens.reserve(users);
  for (uint64_t u = 0; u < users; ++u) {
    data->tokens.push_back(
        cfg.jwt_secret.empty()
            ? std::string()
            : make_user_jwt(uuid_from_key(mix64(cfg.seed + 0x05e7ULL) ^ u), exp, cfg.jwt_secret));
  }
  return data;
}

void add_comments(ScenarioData& data, const std::vector<std::vector<std::string>>& ids_per_video) {
  std::map<size_t, std::shared_ptr<ZipfSampler>> by_size;
  for (size_t v = 0; v < data.reaction_paths.size() && v < ids_per_video.size(); ++v) {
    auto& paths = data.reaction_paths[v];
    for (const std::string& id : ids_per_video[v])
      paths.push_back("/v1/comments/" + id + "/reaction");
    // Rank k of the Zipf order is paths[k]: shuffle so the hot head is not one page.
    Rng rng(mix64(data.cfg.seed ^ (0x5eedf00dULL + v)));
    for (size_t i = paths.size(); i > 1; --i) std::swap(paths[i - 1], paths[rng.below(i)]);
    if (paths.empty()) continue;
    auto& sampler = by_size[paths.size()];
    if (!sampler) sampler = std::make_shared<ZipfSampler>(paths.size(), data.cfg.comment_zipf);
    data.comment_samplers[v] = sampler;
  }
}

namespace {

constexpr size_t cursor_slots = 256;
constexpr size_t reaction_slots = 4096;

// A reaction this shard made, so it can later switch or remove it like a real user.
struct PastReaction {
  uint32_t user = 0;
  uint32_t video = 0;
  uint32_t comment = 0;  // rank in the video's Zipf order
  uint8_t type = 0;      // 0 none (removed), 1 like, 2 dislike
};

class ScenarioShard : public WorkloadShard {
 public:
  ScenarioShard(std::shared_ptr<const ScenarioData> data, size_t shard)
      : data_(std::move(data)), shard_(shard), cursors_(cursor_slots), reactions_(reaction_slots) {
    const auto& r = data_->cfg.rates;
    total_rate_ = r[cat_read] + r[cat_comment] + r[cat_reaction];
  }

  void build(uint64_t index, RequestSlot& slot) override {
    const ScenarioConfig& cfg = data_->cfg;
    Rng rng(mix64(cfg.seed ^ mix64(index + 1)));
    const auto& rates = cfg.rates;
    if (cfg.scenario == Scenario::baseline) {
      slot.op = op_get_root;
      append_request(slot.bytes, "GET", "/", cfg.host_header, token(rng), {});
      return;
    }
    const double u = rng.uniform() * total_rate_;
    const uint32_t video = static_cast<uint32_t>(data_->video_sampler->sample(rng));
    if (u < rates[cat_read]) {
      build_read(rng, video, slot);
    } else if (u < rates[cat_read] + rates[cat_comment] || !data_->comment_samplers[video]) {
      build_comment(index, rng, video, slot);
    } else {
      build_reaction(rng, video, slot);
    }
  }

  void on_response(const RequestSlot& slot, unsigned status, std::string_view body) override {
    if (slot.op != op_read_page && slot.op != op_read_next_page) return;
    // tag: video << 32 | (cursor slot + 1) to fill; 0 = keep none.
    const uint64_t slot_plus_one = slot.tag & 0xffffffffULL;
    if (slot_plus_one == 0) return;
    CursorSlot& c = cursors_[slot_plus_one - 1];
    c.cursor.clear();
    if (status != 200) return;
    if (auto next = find_json_string(body, "next_cursor"); next && !next->empty()) {
      c.cursor.assign(*next);
      c.video = static_cast<uint32_t>(slot.tag >> 32);
    }
  }

 private:
  struct CursorSlot {
    std::string cursor;  // empty: free
    uint32_t video = 0;
  };

  std::string_view token(Rng& rng) const { return data_->tokens[rng.below(data_->tokens.size())]; }

  void build_read(Rng& rng, uint32_t video, RequestSlot& slot) {
    const ScenarioConfig& cfg = data_->cfg;
    const size_t s = rng.below(cursor_slots);
    CursorSlot& c = cursors_[s];
    if (!c.cursor.empty() && rng.uniform() < cfg.next_page_fraction) {
      // A reader paging on: send the cursor, keep the next one in the same slot.
      path_ = data_->first_page_paths[c.video];
      path_ += "&cursor=";
      path_ += c.cursor;
      slot.op = op_read_next_page;
      slot.tag = (uint64_t{c.video} << 32) | (s + 1);
      append_request(slot.bytes, "GET", path_, cfg.host_header, token(rng), {});
      return;
    }
    slot.op = op_read_page;
    // Remember this page's next_cursor when its slot is free, or now and then to refresh.
    const bool keep = c.cursor.empty() || rng.below(16) == 0;
    slot.tag = keep ? ((uint64_t{video} << 32) | (s + 1)) : 0;
    append_request(slot.bytes, "GET", data_->first_page_paths[video], cfg.host_header, token(rng),
                   {});
  }

  void build_comment(uint64_t index, Rng& rng, uint32_t video, RequestSlot& slot) {
    static constexpr std::string_view words[] = {
        "great", "video", "loved", "the",   "part",  "at",     "this", "is",
        "why",   "I",     "watch", "first", "again", "thanks", "for",  "sharing"};
    body_ = R"({"content":"loadgen )";
    body_ += std::to_string(shard_);
    body_ += '-';
    body_ += std::to_string(index);
    const uint64_t n = 4 + rng.below(28);
    for (uint64_t i = 0; i < n; ++i) {
      body_ += ' ';
      body_ += words[rng.below(std::size(words))];
    }
    body_ += R"("})";
    slot.op = op_post_comment;
    append_request(slot.bytes, "POST", data_->comment_paths[video], data_->cfg.host_header,
                   token(rng), body_);
  }

  void build_reaction(Rng& rng, uint32_t video, RequestSlot& slot) {
    const ScenarioConfig& cfg = data_->cfg;
    const double u = rng.uniform();
    // ~70 % like, 20 % dislike, 5 % switch, 5 % remove; the last two need a past reaction.
    if (u >= 0.90 && reaction_count_ > 0) {
      PastReaction& past = reactions_[rng.below(std::min(reaction_count_, reaction_slots))];
      if (past.type != 0) {
        path_ = data_->reaction_paths[past.video][past.comment];
        const std::string_view bearer = data_->tokens[past.user];
        if (u < 0.95) {
          past.type = past.type == 1 ? 2 : 1;
          slot.op = op_put_reaction;
          append_request(slot.bytes, "PUT", path_, cfg.host_header, bearer,
                         past.type == 1 ? R"({"type":"like"})" : R"({"type":"dislike"})");
        } else {
          past.type = 0;
          slot.op = op_delete_reaction;
          append_request(slot.bytes, "DELETE", path_, cfg.host_header, bearer, {});
        }
        return;
      }
    }
    PastReaction r;
    r.user = static_cast<uint32_t>(rng.below(data_->tokens.size()));
    r.video = video;
    r.comment = static_cast<uint32_t>(data_->comment_samplers[video]->sample(rng));
    r.type = u < 0.70 ? 1 : 2;  // u < 0.9 here: 70 % like, 20 % dislike
    reactions_[reaction_count_++ % reaction_slots] = r;
    slot.op = op_put_reaction;
    append_request(slot.bytes, "PUT", data_->reaction_paths[video][r.comment], cfg.host_header,
                   data_->tokens[r.user],
                   r.type == 1 ? R"({"type":"like"})" : R"({"type":"dislike"})");
  }

  std::shared_ptr<const ScenarioData> data_;
  size_t shard_;
  double total_rate_ = 0;
  std::vector<CursorSlot> cursors_;
  std::vector<PastReaction> reactions_;
  size_t reaction_count_ = 0;
  std::string path_;  // scratch, reused
  std::string body_;  // scratch, reused
};

class ScenarioWorkload : public Workload {
 public:
  explicit ScenarioWorkload(std::shared_ptr<const ScenarioData> data) : data_(std::move(data)) {}
  std::vector<std::string> op_names() const override {
    std::vector<std::string> names;
    for (size_t op = 0; op < op_count; ++op) names.emplace_back(op_name(op));
    return names;
  }
  std::unique_ptr<WorkloadShard> make_shard(size_t shard_index) override {
    return std::make_unique<ScenarioShard>(data_, shard_index);
  }

 private:
  std::shared_ptr<const ScenarioData> data_;
};

}  // namespace

std::unique_ptr<Workload> make_scenario_workload(std::shared_ptr<const ScenarioData> data) {
  return std::make_unique<ScenarioWorkload>(std::move(data));
}

// The ids one seeding shard collected.
struct SeedWorkload::Sink {
  std::vector<std::vector<std::string>> ids;  // per video
};

namespace {
class SeedShard : public WorkloadShard {
 public:
  SeedShard(std::shared_ptr<const ScenarioData> data, std::shared_ptr<SeedWorkload::Sink> sink)
      : data_(std::move(data)), sink_(std::move(sink)) {}
  void build(uint64_t index, RequestSlot& slot) override {
    const auto& d = *data_;
    const uint64_t video = index % d.video_ids.size();
    body_ = R"({"content":"seed comment )";
    body_ += std::to_string(index);
    body_ += R"("})";
    slot.op = 0;
    slot.tag = video;
    append_request(slot.bytes, "POST", d.comment_paths[video], d.cfg.host_header,
                   d.tokens[index % d.tokens.size()], body_);
  }
  void on_response(const RequestSlot& slot, unsigned status, std::string_view body) override {
    if (status != 200 && status != 201) return;
    if (auto id = find_json_string(body, "id")) sink_->ids[slot.tag].emplace_back(*id);
  }

 private:
  std::shared_ptr<const ScenarioData> data_;
  std::shared_ptr<SeedWorkload::Sink> sink_;
  std::string body_;
};
}  // namespace

SeedWorkload::SeedWorkload(std::shared_ptr<const ScenarioData> data) : data_(std::move(data)) {}

std::unique_ptr<WorkloadShard> SeedWorkload::make_shard(size_t) {
  auto sink = std::make_shared<Sink>();
  sink->ids.resize(data_->video_ids.size());
  sinks_.push_back(sink);
  return std::make_unique<SeedShard>(data_, std::move(sink));
}

std::vector<std::vector<std::string>> SeedWorkload::collected() const {
  std::vector<std::vector<std::string>> all(data_->video_ids.size());
  for (const auto& sink : sinks_) {
    for (size_t v = 0; v < all.size(); ++v) {
      all[v].insert(all[v].end(), sink->ids[v].begin(), sink->ids[v].end());
    }
  }
  return all;
}

}  // namespace commentd::loadgen
