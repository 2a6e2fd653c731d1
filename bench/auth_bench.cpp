// Micro-benchmarks of JWT handling: verify() runs on every authenticated request before any
// other work, so its cost is a floor on per-request latency for logged-in users.
#include <benchmark/benchmark.h>

#include <string>

#include "auth/jwt.h"
#include "core/clock.h"

using namespace commentd;

namespace {

const std::string kSecret = "bench-secret-0123456789abcdef0123456789abcdef";

// A realistic payload: sub, role, iat/exp an hour apart.
std::string sample_payload(const Clock& clock) {
  const int64_t now_s = clock.now_ms() / 1000;
  return R"({"sub":"0190a4c2-7b1e-7c3d-9f00-1234567890ab","role":"viewer","iat":)" +
         std::to_string(now_s) + R"(,"exp":)" + std::to_string(now_s + 3600) + "}";
}

}  // namespace

// JwtVerifier::verify of a valid HS256 token. cached:0 is the full check (two base64url
// decodes, one HMAC-SHA256, two small JSON parses, the claim checks); cached:1 is a client
// sending the same token again, answered from the verified-token cache (exp still checked).
void BM_jwt_verify(benchmark::State& state) {
  SystemClock clock;
  const auth::JwtVerifier verifier(kSecret, clock, state.range(0) ? 16384 : 0);
  const std::string token = auth::sign_hs256(kSecret, sample_payload(clock));
  if (!verifier.verify(token)) {
    state.SkipWithError("the benchmark token does not verify");
    return;
  }
  for (auto _ : state) {
    auto claims = verifier.verify(token);
    benchmark::DoNotOptimize(claims);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_jwt_verify)->ArgName("cached")->Arg(0)->Arg(1);

// sign_hs256: used by tools and the load generator, not the server; shown for comparison
// (it is verify minus the JSON parsing).
void BM_jwt_sign_hs256(benchmark::State& state) {
  SystemClock clock;
  const std::string payload = sample_payload(clock);
  for (auto _ : state) {
    std::string token = auth::sign_hs256(kSecret, payload);
    benchmark::DoNotOptimize(token);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_jwt_sign_hs256);
