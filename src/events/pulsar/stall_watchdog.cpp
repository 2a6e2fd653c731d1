#include "events/pulsar/stall_watchdog.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "config/config.h"
#include "net/tls.h"

namespace commentd::events {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

int64_t int_field(const rapidjson::Value& o, const char* name) {
  auto it = o.FindMember(name);
  if (it == o.MemberEnd() || !it->value.IsNumber()) return 0;
  return it->value.IsInt64() ? it->value.GetInt64() : static_cast<int64_t>(it->value.GetDouble());
}

// The request over `stream` (a tcp_stream, or TLS over one), after its connect and handshake.
template <class Stream>
void exchange(Stream& stream, http::request<http::empty_body>& req, beast::flat_buffer& buf,
              http::response<http::string_body>& res, std::optional<beast::error_code>& done) {
  http::async_write(stream, req, [&](beast::error_code ec, size_t) {
    if (ec) return void(done = ec);
    http::async_read(stream, buf, res, [&](beast::error_code ec, size_t) { done = ec; });
  });
}

// `tls` set: HTTPS, the server's chain and name verified (SNI for a DNS name).
Result<AdminReply> admin_call(const config::HostPort& hp, const std::string& token, std::chrono::milliseconds timeout,
                              const std::shared_ptr<asio::ssl::context>& tls, std::string_view method,
                              const std::string& target) {
  asio::io_context ioc;
  asio::ip::tcp::resolver resolver(ioc);
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::tcp_stream& tcp = tls ? secure.emplace(ioc, *tls).next_layer() : plain.emplace(ioc);
  http::request<http::empty_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, hp.host + ":" + std::to_string(hp.port));
  req.set(http::field::accept, "application/json");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  req.content_length(0);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  std::optional<beast::error_code> done;
  if (secure) {
    net::expect_server_name(*secure, hp.host);
  }

  tcp.expires_after(timeout);
  resolver.async_resolve(hp.host, std::to_string(hp.port), [&](beast::error_code ec, asio::ip::tcp::resolver::results_type r) {
    if (ec) return void(done = ec);
    tcp.async_connect(r, [&](beast::error_code ec, const asio::ip::tcp::endpoint&) {
      if (ec) return void(done = ec);
      if (!secure) return exchange(*plain, req, buf, res, done);
      secure->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec) {
        if (ec) return void(done = ec);
        exchange(*secure, req, buf, res, done);
      });
    });
  });
  ioc.run_for(timeout);
  if (!done) {
    // The resolver is outside the stream's timer: cancel both and let the handlers finish.
    resolver.cancel();
    tcp.close();
    ioc.restart();
    ioc.run();
    return Error(Errc::unavailable, "pulsar admin: no answer within the timeout", "pulsar_admin");
  }
  if (*done) return Error(Errc::unavailable, "pulsar admin: " + done->message(), "pulsar_admin");
  return AdminReply{static_cast<int>(res.result_int()), std::move(res.body())};
}

}  // namespace

Result<std::optional<SubscriptionSample>> parse_subscription_stats(std::string_view json,
                                                                   std::string_view subscription) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject())
    return Error(Errc::internal, "pulsar admin: topic stats are not a JSON object", "pulsar_admin");
  auto subs = doc.FindMember("subscriptions");
  if (subs == doc.MemberEnd() || !subs->value.IsObject())
    return Error(Errc::internal, "pulsar admin: topic stats without subscriptions", "pulsar_admin");
  auto sub = subs->value.FindMember(rapidjson::Value(rapidjson::StringRef(subscription.data(), subscription.size())));
  if (sub == subs->value.MemberEnd()) return std::optional<SubscriptionSample>{};
  if (!sub->value.IsObject()) return Error(Errc::internal, "pulsar admin: a subscription's stats are not an object", "pulsar_admin");
  const auto& s = sub->value;
  SubscriptionSample out;
  out.backlog = int_field(s, "msgBacklog");
  out.unacked = int_field(s, "unackedMessages");
  out.msg_out = int_field(s, "msgOutCounter");
  if (auto c = s.FindMember("consumers"); c != s.MemberEnd() && c->value.IsArray()) {
    for (const auto& consumer : c->value.GetArray()) {
      if (!consumer.IsObject()) continue;
      ++out.consumers;
      out.permits += int_field(consumer, "availablePermits");
    }
  }
  return std::optional<SubscriptionSample>{out};
}

Result<std::string> admin_topic_path(std::string_view topic) {
  constexpr std::string_view scheme = "persistent://";
  if (topic.substr(0, scheme.size()) != scheme)
    return Error(Errc::bad_request, "not a persistent:// topic: " + std::string(topic), "bad_topic");
  std::string_view rest = topic.substr(scheme.size());
  size_t slashes = 0;
  for (char c : rest) slashes += c == '/';
  if (slashes != 2 || rest.front() == '/' || rest.back() == '/' || rest.find("//") != std::string_view::npos)
    return Error(Errc::bad_request, "not persistent://tenant/namespace/topic: " + std::string(topic), "bad_topic");
  return "/admin/v2/persistent/" + std::string(rest);
}

bool StallDetector::observe(const SubscriptionSample& s, TimeMs now) {
  const bool waiting = s.consumers > 0 && s.permits > 0 && s.backlog > s.unacked;
  const bool moved = !last_out_ || *last_out_ != s.msg_out;
  last_out_ = s.msg_out;
  if (!waiting || moved) {
    // Waiting starts (or starts over) at a sample that dispatched something.
    waiting_since_ = waiting ? std::optional<TimeMs>(now) : std::nullopt;
    return false;
  }
  if (!waiting_since_) waiting_since_ = now;
  return now - *waiting_since_ >= stuck_after_.count();
}

Result<AdminHttp> make_admin_http(const std::string& admin_url, const std::string& token,
                                  std::chrono::milliseconds timeout, const std::string& ca_file) {
  auto unusable = [&] {
    return Error(Errc::bad_request, "pulsar.admin_url must be http://host:port or https://host:port, got " + admin_url,
                 "bad_config");
  };
  std::string_view rest(admin_url);
  const bool https = rest.starts_with("https://");
  if (!https && !rest.starts_with("http://")) return unusable();
  rest.remove_prefix(https ? 8 : 7);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto hp = config::parse_host_port(rest);
  if (!hp) return unusable();
  std::shared_ptr<asio::ssl::context> tls;
  if (https) {
    auto ctx = net::make_client_context({ca_file, "", ""}, "pulsar admin tls");
    if (!ctx) return ctx.take_error();
    tls = std::move(*ctx);
  }
  return AdminHttp([hp = *hp, token, timeout, tls](std::string_view method, const std::string& target) {
    return admin_call(hp, token, timeout, tls, method, target);
  });
}

StallWatchdog::StallWatchdog(AdminHttp http, std::vector<WatchedSubscription> watched,
                             std::chrono::milliseconds stuck_after, const Clock& clock)
    : http_(std::move(http)), clock_(clock) {
  for (auto& w : watched) {
    auto path = admin_topic_path(w.topic);
    if (!path) {
      spdlog::warn("stall watchdog: {}; not watched", path.error().message);
      continue;
    }
    entries_.push_back(Entry{std::move(w), std::move(*path), StallDetector(stuck_after)});
  }
}

Status StallWatchdog::check() {
  size_t failed = 0;
  Error last_error(Errc::unavailable, "", "");
  for (auto& e : entries_) {
    auto reply = http_("GET", e.path + "/stats");
    if (reply && reply->status == 404) {
      e.detector.reset();  // no such topic yet: nothing to dispatch
      stats_.checks.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    Result<std::optional<SubscriptionSample>> sample =
        !reply ? Result<std::optional<SubscriptionSample>>(reply.take_error())
        : reply->status != 200
            ? Result<std::optional<SubscriptionSample>>(Error(
                  Errc::unavailable, "pulsar admin: topic stats answered " + std::to_string(reply->status), "pulsar_admin"))
            : parse_subscription_stats(reply->body, e.w.subscription);
    if (!sample) {
      stats_.errors.fetch_add(1, std::memory_order_relaxed);
      ++failed;
      last_error = sample.take_error();
      continue;
    }
    stats_.checks.fetch_add(1, std::memory_order_relaxed);
    if (!*sample) {
      e.detector.reset();
      continue;
    }
    const auto& s = **sample;
    if (!e.detector.observe(s, clock_.now_ms())) continue;
    stats_.stalls.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn(
        "pulsar: subscription {} of {} dispatches nothing ({} in backlog, {} delivered unacknowledged, {} consumers "
        "with {} permits); unloading the topic",
        e.w.subscription, e.w.topic, s.backlog, s.unacked, s.consumers, s.permits);
    auto unload = http_("PUT", e.path + "/unload");
    e.detector.reset();
    if (unload && (unload->status == 200 || unload->status == 204)) {
      stats_.unloads.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats_.errors.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("pulsar: unloading {} failed: {}", e.w.topic,
                   unload ? "status " + std::to_string(unload->status) : unload.error().message);
    }
  }
  if (!entries_.empty() && failed == entries_.size()) return last_error;
  return ok_status();
}

}  // namespace commentd::events
