// The node's identity (docs/cluster.md "Node identity"): node.id from config, or, when it is
// 0, an id derived once at random and kept in `<data_dir>/node_id`, so a restart keeps it.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"

namespace commentd::app {

// 1..1023. `configured` 1..1023 wins (and is not written); 0 reads the file, or creates it
// with `random_bits` mapped into 1..1023. Errc::internal if the file is unreadable,
// malformed or cannot be written.
Result<uint16_t> resolve_node_id(int configured, const std::string& data_dir, uint64_t random_bits);

}  // namespace commentd::app
