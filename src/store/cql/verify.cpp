// `commentd --verify` on CQL (verify.h).
#include "store/cql/verify.h"

#include <cstdlib>
#include <mutex>

#include "store/cql/backfill_internal.h"

namespace commentd::store::cql {

using bridge::Rows;

Result<VerifyOutcome> run_verify(const bridge::Runtime& rt, const config::CqlConfig& cfg, const VerifyOptions& opts) {
  auto opened = tool::Tool::open(rt, cfg);
  if (!opened) return opened.take_error();
  tool::Tool& t = **opened;
  VerifyOutcome out;
  std::atomic<uint64_t> differences{0}, repaired{0};
  std::mutex out_mu;

  auto report = [&](const std::string& line) {
    std::lock_guard lk(out_mu);
    std::fprintf(opts.out, "%s\n", line.c_str());
  };
  auto comment_row = [&](const Rows& r, size_t i) -> Status {
    auto id = r.uuid(i, 1), video = r.uuid(i, 2);
    if (!id || !*id || !video) return Error(Errc::internal, "cql: corrupt comments row");
    const Uuid cid = from_cql(**id);
    auto c = t.recount_comment(cid, *video ? from_cql(**video) : Uuid{});
    if (!c) return c.take_error();
    if (!c->differs()) return ok_status();
    differences.fetch_add(1);
    const auto& s = c->r.stored;
    const auto& w = c->r.truth;
    report("comment " + cid.str() + ": stored likes=" + std::to_string(s.likes) +
           " dislikes=" + std::to_string(s.dislikes) + " replies=" + std::to_string(s.replies_count) +
           ", recounted likes=" + std::to_string(w.likes) + " dislikes=" + std::to_string(w.dislikes) +
           " replies=" + std::to_string(w.replies_count) + (opts.repair ? " (repaired)" : ""));
    if (opts.repair) {
      if (auto st = t.add_difference(cid, c->r); !st) return st;
      repaired.fetch_add(1);
    }
    return ok_status();
  };
  auto video_row = [&](const Rows& r, size_t i) -> Status {
    static thread_local std::optional<Uuid> last;  // one row per bucket; a range is one thread's
    auto id = r.uuid(i, 1);
    if (!id || !*id) return Error(Errc::internal, "cql: corrupt video_buckets row");
    const Uuid vid = from_cql(**id);
    if (last && *last == vid) return ok_status();
    last = vid;
    auto v = t.recount_video(vid);
    if (!v) return v.take_error();
    {
      std::lock_guard lk(out_mu);
      ++out.videos;
    }
    if (!v->differs()) return ok_status();
    differences.fetch_add(1);
    const auto& s = v->r.stored;
    const auto& w = v->r.truth;
    report("video " + vid.str() + ": stored comments=" + std::to_string(s.comments_count) +
           " reactions=" + std::to_string(s.reactions_count) + ", recounted comments=" +
           std::to_string(w.comments_count) + " reactions=" + std::to_string(w.reactions_count) +
           (opts.repair ? " (repaired)" : ""));
    if (opts.repair) {
      if (auto st = t.add_difference(vid, v->r); !st) return st;
      repaired.fetch_add(1);
    }
    return ok_status();
  };

  for (bool comments : {true, false}) {
    tool::ScanSpec spec;
    spec.phase = comments ? "verify comments" : "verify videos";
    spec.select = comments ? t.st().scan_comments.get() : t.st().scan_videos.get();
    spec.ranges = opts.ranges;
    spec.concurrency = opts.concurrency;
    spec.progress = opts.progress;
    if (comments) spec.row = comment_row;
    else spec.row = video_row;
    auto s = tool::scan(t, spec);
    if (!s) return s.take_error();
    if (comments) out.comments = s->rows;
  }
  out.differences = differences.load();
  out.repaired = repaired.load();
  return out;
}

int run_verify_command(const config::Config& config, const std::vector<std::string>& args) {
  VerifyOptions o;
  o.progress = stderr;
  for (size_t i = 0; i < args.size(); ++i) {
    char* end = nullptr;
    if (args[i] == "--repair") {
      o.repair = true;
    } else if (args[i] == "--concurrency" && i + 1 < args.size() &&
               (o.concurrency = static_cast<int>(std::strtol(args[i + 1].c_str(), &end, 10))) >= 1 &&
               o.concurrency <= 256 && end && !*end) {
      ++i;
    } else {
      std::fprintf(stderr, "commentd --verify: bad argument '%s' (flags on CQL: --repair, --concurrency N)\n",
                   args[i].c_str());
      return 2;
    }
  }
  auto rt = bridge::Runtime::create(static_cast<unsigned>(std::max(2, config.storage.cql.driver_threads)));
  if (!rt) {
    std::fprintf(stderr, "verify: %s\n", rt.error().message.c_str());
    return 2;
  }
  auto out = run_verify(**rt, config.storage.cql, o);
  if (!out) {
    std::fprintf(stderr, "verify: %s\n", out.error().message.c_str());
    return 2;
  }
  std::printf("verify: %llu comments and %llu videos checked on CQL, %llu differences%s\n",
              (unsigned long long)out->comments, (unsigned long long)out->videos,
              (unsigned long long)out->differences,
              o.repair ? (", " + std::to_string(out->repaired) + " repaired").c_str() : "");
  if (out->differences == 0) return 0;
  return o.repair && out->repaired == out->differences ? 0 : 1;
}

}  // namespace commentd::store::cql
