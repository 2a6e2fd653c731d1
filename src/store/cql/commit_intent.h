// A commit intent's body (docs/cluster.md "Commit intents"): what a CQL write commits after
// its entity write, recorded before it, so that a write that dies after its entity write can
// be rolled forward by any node. It carries the derived rows a comment write makes (list
// indexes, bucket rows, the user's hidden marks and read-your-writes mark), its outbox
// events, and its counter deltas. A roll-forward never applies the deltas (a counter update
// is not idempotent): it marks their guarded counters for the counter repair, which recounts
// them once the rolled-forward rows are there.
//
// The encoding is this repository's own (a version byte, then one tagged record per
// mutation, integers big-endian, strings length-prefixed); it only ever lives in
// commit_intents rows, written and read by the same release line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "store/store.h"

namespace commentd::store::cql {

// Whether `m` is a mutation the body carries (what a comment write makes besides its entity
// write).
bool intent_carries(const Mutation& m);
// Is `m` left out of the body on purpose (the entity write)?
bool intent_skips(const Mutation& m);

// The body of `mutations`' carried ones, in order. Errc::internal if one of them is neither
// carried nor skipped: a write with an entity write may only make what the body can carry.
Result<std::string> encode_intent(const std::vector<Mutation>& mutations);
// The carried mutations, in order. Errc::internal on a body that is not one of ours.
Result<std::vector<Mutation>> decode_intent(std::string_view body);

}  // namespace commentd::store::cql
