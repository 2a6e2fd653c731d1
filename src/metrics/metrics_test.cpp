#include "metrics/metrics.h"

#include "metrics/histogram.h"

#include <gtest/gtest.h>

namespace commentd::metrics {
namespace {

std::string route_a = "/v1/comments/{id}";

TEST(MetricsTest, RequestHistogramCountsPerSeriesAndSourcesAreRendered) {
  Metrics m;
  m.observe_request("GET", route_a, 200, 0.001);
  m.observe_request("GET", route_a, 200, 0.002);
  m.observe_request("GET", route_a, 404, 0.001);
  m.observe_request("GET", "", 404, 0.001);
  m.add_source([](std::vector<prometheus::MetricFamily>& out) {
    out.push_back(counter_family("comment_cache_hits_total", "hits", 7));
    out.push_back(counter_family("comment_checks_total", "checks", "outcome", {{"hit", 5}, {"miss", 2}}));
  });
  std::string text = m.render();
  EXPECT_NE(text.find(R"(commentd_http_request_duration_seconds_count{method="GET",route="/v1/comments/{id}",status="200"} 2)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(route="/v1/comments/{id}",status="404"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(route="unmatched",status="404"} 1)"), std::string::npos);
  EXPECT_NE(text.find("comment_cache_hits_total 7"), std::string::npos);
  EXPECT_NE(text.find("# TYPE comment_cache_hits_total counter"), std::string::npos);
  EXPECT_NE(text.find(R"(comment_checks_total{outcome="hit"} 5)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(comment_checks_total{outcome="miss"} 2)"), std::string::npos);
  EXPECT_NE(text.find("# TYPE comment_checks_total counter"), std::string::npos);
}

// A second registry on this thread must not reuse the first one's cached series.
TEST(MetricsTest, InstancesAreIndependent) {
  {
    Metrics first;
    first.observe_request("PUT", route_a, 202, 0.001);
  }
  Metrics second;
  second.observe_request("PUT", route_a, 202, 0.001);
  EXPECT_NE(second.render().find(R"(status="202"} 1)"), std::string::npos);
}

TEST(MetricsTest, HistogramRendersCumulativeBuckets) {
  Histogram h({0.001, 0.01, 0.1});
  h.observe(0.0005);
  h.observe(0.001);  // on a bound: counted in that bucket (le)
  h.observe(0.05);
  h.observe(7);
  auto snap = h.snapshot();
  EXPECT_EQ(snap.count, 4u);
  EXPECT_DOUBLE_EQ(snap.sum, 0.0005 + 0.001 + 0.05 + 7);
  Metrics m;
  m.add_source([&](std::vector<prometheus::MetricFamily>& out) {
    out.push_back(histogram_family("commentd_test_seconds", "test", h));
  });
  std::string text = m.render();
  EXPECT_NE(text.find(R"(commentd_test_seconds_bucket{le="0.001"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(commentd_test_seconds_bucket{le="0.01"} 2)"), std::string::npos);
  EXPECT_NE(text.find(R"(commentd_test_seconds_bucket{le="0.1"} 3)"), std::string::npos);
  EXPECT_NE(text.find(R"(commentd_test_seconds_bucket{le="+Inf"} 4)"), std::string::npos);
  EXPECT_NE(text.find("commentd_test_seconds_count 4"), std::string::npos);
}

}  // namespace
}  // namespace commentd::metrics
