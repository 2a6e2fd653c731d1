#include "bridge/pulsar_client.h"

namespace commentd::bridge {

namespace {
const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
std::string str(const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); }
}  // namespace

void PulsarProducer::start_send(const std::string& key, const std::string& payload, const Properties& props,
                                uint64_t sequence_id, cb_done done, void* user) {
  std::vector<cb_pulsar_property> cp;
  cp.reserve(props.size());
  for (const auto& [k, v] : props) cp.push_back(cb_pulsar_property{u8(k), k.size(), u8(v), v.size()});
  cb_pulsar_send(p_, u8(key), key.size(), u8(payload), payload.size(), cp.data(), cp.size(), sequence_id, done, user);
}

Message PulsarConsumer::copy_message(const cb_pulsar_message* m) {
  Message out;
  const uint8_t* p = nullptr;
  size_t n = 0;
  cb_pulsar_message_key(m, &p, &n);
  out.key = str(p, n);
  cb_pulsar_message_payload(m, &p, &n);
  out.payload = str(p, n);
  cb_pulsar_message_id(m, &p, &n);
  out.id = str(p, n);
  out.publish_time_ms = cb_pulsar_message_publish_time_ms(m);
  cb_pulsar_message_producer(m, &p, &n);
  out.producer = str(p, n);
  out.sequence_id = cb_pulsar_message_sequence_id(m);
  cb_pulsar_message_position(m, &out.ledger_id, &out.entry_id, &out.batch_index, &out.batch_size);
  size_t count = cb_pulsar_message_property_count(m);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t *k = nullptr, *v = nullptr;
    size_t kl = 0, vl = 0;
    if (cb_pulsar_message_property(m, i, &k, &kl, &v, &vl) == 0) out.properties.emplace_back(str(k, kl), str(v, vl));
  }
  return out;
}

}  // namespace commentd::bridge
