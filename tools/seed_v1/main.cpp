// seed_v1: test data for `commentd backfill` (build/seed_v1).
//   seed_v1 seed HOST:PORT KEYSPACE COMMENTS VIDEOS SEED
//     writes V1-shaped rows as the old Go service did: `comments` (null version, no V2
//     columns), `comments_by_video` for top-level comments, `replies` for replies (one
//     level), `reactions` (type, created_at only). About a quarter of the comments are
//     replies, every 50th is hidden; 0-4 reactions each. Deterministic for a SEED. Prints
//     one JSON line: what the first video must show once backfilled (the oracle of the test).
//   seed_v1 exec HOST:PORT "CQL"
//     runs one statement and prints its rows, tab-separated (uuid, text, integers, booleans).
// The keyspace must exist with the V1 tables (`commentd migrate` creates them).
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "bridge/cql_client.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/cql/migrate.h"

using namespace commentd;
using bridge::Value;

namespace {

bridge::Uuid B(const Uuid& u) {
  bridge::Uuid out;
  for (size_t i = 0; i < 16; ++i) out[i] = u.bytes[i];
  return out;
}
Value U(const Uuid& u) { return Value::uuid(B(u)); }
Uuid random_uuid(std::mt19937_64& rng) {
  Uuid u;
  for (size_t i = 0; i < 16; ++i) u.bytes[i] = static_cast<uint8_t>(rng());
  u.bytes[6] = (u.bytes[6] & 0x0f) | 0x40;
  u.bytes[8] = (u.bytes[8] & 0x3f) | 0x80;
  return u;
}

// Runs executes with at most `window` in flight; the first error stops the program.
class Writer {
 public:
  Writer(bridge::CqlSession& s, size_t window) : s_(s), window_(window) {}
  void put(const bridge::PreparedPtr& p, std::vector<Value> v) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return in_flight_ < window_; });
      ++in_flight_;
    }
    bridge::ExecOptions o;
    o.consistency = bridge::Consistency::one;
    o.timeout = std::chrono::seconds(30);
    o.idempotent = true;
    s_.execute(*p, std::move(v), o, boost::asio::bind_executor(pool_, [this, p](Result<bridge::Rows> r) {
                 if (!r) {
                   std::fprintf(stderr, "seed_v1: write failed: %s\n", r.error().message.c_str());
                   std::exit(1);
                 }
                 std::lock_guard lk(mu_);
                 --in_flight_;
                 ++done_;
                 cv_.notify_all();
               }));
  }
  void drain() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return in_flight_ == 0; });
  }
  ~Writer() { drain(); pool_.join(); }

 private:
  bridge::CqlSession& s_;
  size_t window_;
  boost::asio::thread_pool pool_{2};
  std::mutex mu_;
  std::condition_variable cv_;
  size_t in_flight_ = 0, done_ = 0;
};

template <class T, class Init>
Result<T> wait(Init init) {
  boost::asio::thread_pool pool(1);
  std::promise<Result<T>> p;
  auto f = p.get_future();
  init(boost::asio::bind_executor(pool, [&p](Result<T> r) { p.set_value(std::move(r)); }));
  auto r = f.get();
  pool.join();
  return r;
}

std::unique_ptr<bridge::CqlSession> connect(const bridge::Runtime& rt, const std::string& host) {
  config::CqlConfig cfg;
  cfg.hosts = {host};
  cfg.request_timeout = std::chrono::seconds(60);
  auto s = store::cql::connect_cql(rt, cfg);
  if (!s) {
    std::fprintf(stderr, "seed_v1: cannot connect to %s: %s\n", host.c_str(), s.error().message.c_str());
    std::exit(1);
  }
  return std::move(*s);
}

bridge::PreparedPtr prepare(bridge::CqlSession& s, const std::string& cql) {
  auto p = wait<bridge::PreparedPtr>([&](auto h) { s.prepare(cql, std::move(h)); });
  if (!p) {
    std::fprintf(stderr, "seed_v1: prepare '%s': %s\n", cql.c_str(), p.error().message.c_str());
    std::exit(1);
  }
  return *p;
}

struct Expect {
  int64_t likes = 0, dislikes = 0, replies = 0;
};

int seed(const bridge::Runtime& rt, const std::string& host, const std::string& ks, long n, long videos,
         uint64_t seed_value) {
  auto s = connect(rt, host);
  auto ins_comment = prepare(*s, "INSERT INTO " + ks + ".comments (id, video_id, user_id, content, created_at, "
                                 "updated_at, parent_id, likes, dislikes, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  auto ins_video = prepare(*s, "INSERT INTO " + ks + ".comments_by_video (video_id, created_at, comment_id) VALUES (?, ?, ?)");
  auto ins_reply = prepare(*s, "INSERT INTO " + ks + ".replies (parent_id, created_at, comment_id) VALUES (?, ?, ?)");
  auto ins_reaction =
      prepare(*s, "INSERT INTO " + ks + ".reactions (comment_id, user_id, type, created_at) VALUES (?, ?, ?, ?)");
  std::mt19937_64 rng(seed_value);
  std::vector<Uuid> vids;
  for (long v = 0; v < videos; ++v) vids.push_back(random_uuid(rng));
  std::vector<std::vector<std::pair<Uuid, TimeMs>>> tops(videos);  // visible top-level comments
  std::vector<Uuid> users;
  for (int u = 0; u < 500; ++u) users.push_back(random_uuid(rng));
  const TimeMs t0 = 1'600'000'000'000;  // 2020-09: old V1 data, many hourly buckets
  Writer w(*s, 512);
  // The first video's oracle: top-level comment -> what its JSON must say; counted comments
  // (visible ones, replies included) and standing reactions.
  std::map<std::string, Expect> first;
  int64_t first_comments = 0, first_reactions = 0;
  for (long i = 0; i < n; ++i) {
    const long v = i % videos;
    const Uuid id = random_uuid(rng);
    const Uuid user = users[rng() % users.size()];
    const TimeMs at = t0 + i * 37'000 + static_cast<TimeMs>(rng() % 1000);
    const bool hidden = i % 50 == 49;
    std::optional<Uuid> parent;
    if (!tops[v].empty() && rng() % 4 == 0) parent = tops[v][rng() % tops[v].size()].first;
    const char* status = hidden ? "hidden" : (i % 3 == 0 ? nullptr : "visible");  // some rows have none
    w.put(ins_comment, {U(id), U(vids[v]), U(user), Value::text("v1 comment " + std::to_string(i)),
                        Value::timestamp_ms(at), Value::timestamp_ms(i % 7 == 0 ? at + 5000 : at),
                        parent ? U(*parent) : Value::null(), Value::int32(0), Value::int32(0),
                        status ? Value::text(status) : Value::null()});
    if (parent) w.put(ins_reply, {U(*parent), Value::timestamp_ms(at), U(id)});
    else w.put(ins_video, {U(vids[v]), Value::timestamp_ms(at), U(id)});
    if (!parent && !hidden) tops[v].emplace_back(id, at);
    Expect e;
    const int reactions = static_cast<int>(rng() % 5);
    for (int k = 0; k < reactions; ++k) {
      const Uuid u = users[(i * 7 + k * 13) % users.size()];  // distinct users per comment
      const bool like = rng() % 3 != 0;
      (like ? e.likes : e.dislikes)++;
      w.put(ins_reaction, {U(id), U(u), Value::text(like ? "like" : "dislike"), Value::timestamp_ms(at + 1000 + k)});
    }
    if (v == 0) {
      if (!parent && !hidden) {
        auto& f = first[id.str()];
        f.likes = e.likes, f.dislikes = e.dislikes;
      } else if (!parent) {
      } else if (!hidden) {
        first[parent->str()].replies++;
      }
      first_comments += hidden ? 0 : 1;
      first_reactions += e.likes + e.dislikes;
    }
  }
  w.drain();
  std::string out = "{\"video\": \"" + vids[0].str() + "\", \"comments_count\": " + std::to_string(first_comments) +
                    ", \"reactions_count\": " + std::to_string(first_reactions) + ", \"top\": {";
  bool comma = false;
  for (auto& [id, e] : first) {
    out += (comma ? ", \"" : "\"") + id + "\": [" + std::to_string(e.likes) + ", " + std::to_string(e.dislikes) +
           ", " + std::to_string(e.replies) + "]";
    comma = true;
  }
  out += "}}";
  std::printf("%s\n", out.c_str());
  return 0;
}

int exec(const bridge::Runtime& rt, const std::string& host, const std::string& cql) {
  auto s = connect(rt, host);
  auto r = wait<bridge::Rows>([&](auto h) { s->query(cql, std::chrono::seconds(60), std::move(h)); });
  if (!r) {
    std::fprintf(stderr, "seed_v1: %s: %s\n", cql.c_str(), r.error().message.c_str());
    return 1;
  }
  for (size_t i = 0; i < r->size(); ++i) {
    for (size_t c = 0; c < r->columns(); ++c) {
      std::string cell = "null";
      switch (r->column_kind(c)) {
        case CB_VALUE_UUID: case CB_VALUE_TIMEUUID: {
          auto u = r->uuid(i, c);
          if (u && *u) {
            Uuid x;
            for (size_t b = 0; b < 16; ++b) x.bytes[b] = (**u)[b];
            cell = x.str();
          }
          break;
        }
        case CB_VALUE_TEXT: case CB_VALUE_ASCII: case CB_VALUE_BLOB: {
          auto t = r->bytes(i, c);
          if (t && *t) cell = std::string(**t);
          break;
        }
        case CB_VALUE_BOOLEAN: {
          auto b = r->boolean(i, c);
          if (b && *b) cell = **b ? "true" : "false";
          break;
        }
        default: {
          auto v = r->i64(i, c);
          if (v && *v) cell = std::to_string(**v);
        }
      }
      std::printf("%s%s", c ? "\t" : "", cell.c_str());
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto rt = bridge::Runtime::create(2);
  if (!rt) {
    std::fprintf(stderr, "seed_v1: %s\n", rt.error().message.c_str());
    return 1;
  }
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "seed" && argc == 7)
    return seed(**rt, argv[2], argv[3], std::atol(argv[4]), std::max(1L, std::atol(argv[5])),
                std::strtoull(argv[6], nullptr, 10));
  if (cmd == "exec" && argc == 4) return exec(**rt, argv[2], argv[3]);
  std::fprintf(stderr, "usage: seed_v1 seed HOST:PORT KEYSPACE COMMENTS VIDEOS SEED | seed_v1 exec HOST:PORT CQL\n");
  return 2;
}
