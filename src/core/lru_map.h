// LruMap: a map bounded to `capacity` entries that forgets its least recently used entry
// first. Not thread-safe: its owners lock around it (store/cql/bucket_lists.h,
// service/comment_checks.h).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

namespace commentd {

template <class K, class V, class Hash = std::hash<K>>
class LruMap {
 public:
  explicit LruMap(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

  // The entry, made the most recently used; nullptr if absent.
  V* find(const K& k) {
    auto it = index_.find(k);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }
  // The entry without touching its recency; nullptr if absent.
  V* peek(const K& k) {
    auto it = index_.find(k);
    return it == index_.end() ? nullptr : &it->second->second;
  }
  // Inserts or replaces; the entry becomes the most recently used, and the least recently
  // used one goes if that passes the capacity.
  V& put(const K& k, V v) {
    if (V* held = find(k)) {
      *held = std::move(v);
      return *held;
    }
    order_.emplace_front(k, std::move(v));
    index_.emplace(k, order_.begin());
    if (index_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return order_.front().second;
  }
  bool erase(const K& k) {
    auto it = index_.find(k);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }
  // Removes the least recently used entry, moving its value to `out` if given; false if empty.
  bool pop_least_recent(V* out = nullptr) {
    if (order_.empty()) return false;
    if (out) *out = std::move(order_.back().second);
    index_.erase(order_.back().first);
    order_.pop_back();
    return true;
  }
  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  using Order = std::list<std::pair<K, V>>;
  size_t capacity_;
  Order order_;                                                  // most recently used first
  std::unordered_map<K, typename Order::iterator, Hash> index_;  // into order_
};

}  // namespace commentd
