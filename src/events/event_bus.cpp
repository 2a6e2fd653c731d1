#include "events/event_bus.h"

namespace commentd::events {

asio::awaitable<Result<std::vector<PublishAck>>> EventBus::publish(std::string topic, std::vector<OutMessage> msgs) {
  return publish(std::move(topic), std::move(msgs), std::string());
}

asio::awaitable<Result<PublishAck>> EventBus::publish(std::string topic, std::string key, std::string payload,
                                                      uint64_t sequence_id) {
  std::vector<OutMessage> one;
  one.push_back({std::move(key), std::move(payload), sequence_id});
  // The call outside the co_await: no temporaries with destructors in a co_await expression.
  auto pending = publish(std::move(topic), std::move(one));
  auto r = co_await std::move(pending);
  if (!r) co_return r.take_error();
  co_return r->at(0);
}

}  // namespace commentd::events
