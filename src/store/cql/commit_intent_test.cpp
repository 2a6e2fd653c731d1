// The commit intent's body (commit_intent.h): every carried kind round-trips in order, the
// entity write is left out, any other kind is refused, and a body that is not
// ours (unknown format, unknown record, truncated anywhere) is an error, never a guess.
#include "store/cql/commit_intent.h"

#include <gtest/gtest.h>

namespace commentd::store::cql {
namespace {

Uuid id(uint8_t n) {
  Uuid u;
  u.bytes.fill(n);
  return u;
}

std::vector<Mutation> a_delete_and_a_create() {
  Comment c;
  c.id = id(1);
  return {PutComment{c},
          IndexPut{Index::replies, id(2), 1'700'000'000'123, id(1)},
          IndexDelete{Index::video, id(3), 1'700'000'000'456, id(4)},
          BucketPut{id(3), "2026-11-30-18", 1'700'000'000'123, id(1)},
          HiddenMark{id(3), id(5), id(1), true},
          HiddenMark{id(3), id(5), id(4), false},
          MetricsDelta{id(2), 0, -3, 1, 7},
          StatsDelta{id(3), -1, 4, 8},
          RecentWrite{id(3), id(5), 1'700'000'060'000},
          AppendOutbox{"persistent://pavilion/comments/events", id(3).str(), std::string("{\"a\":\0}", 7)}};
}

TEST(CommitIntent, CarriedMutationsRoundTripInOrderWithoutTheEntityWrite) {
  auto body = encode_intent(a_delete_and_a_create());
  ASSERT_TRUE(body.ok()) << body.error().message;
  auto back = decode_intent(*body);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->size(), 9u);
  auto& ip = std::get<IndexPut>((*back)[0]);
  EXPECT_EQ(ip.index, Index::replies);
  EXPECT_EQ(ip.key, id(2));
  EXPECT_EQ(ip.created_at, 1'700'000'000'123);
  EXPECT_EQ(ip.id, id(1));
  auto& del = std::get<IndexDelete>((*back)[1]);
  EXPECT_EQ(del.index, Index::video);
  EXPECT_EQ(del.key, id(3));
  EXPECT_EQ(del.created_at, 1'700'000'000'456);
  EXPECT_EQ(del.id, id(4));
  auto& b = std::get<BucketPut>((*back)[2]);
  EXPECT_EQ(b.video_id, id(3));
  EXPECT_EQ(b.bucket, "2026-11-30-18");
  EXPECT_EQ(b.created_at, 1'700'000'000'123);
  EXPECT_EQ(b.id, id(1));
  auto& h1 = std::get<HiddenMark>((*back)[3]);
  EXPECT_TRUE(h1.set);
  EXPECT_EQ(h1.user_id, id(5));
  EXPECT_EQ(h1.id, id(1));
  EXPECT_FALSE(std::get<HiddenMark>((*back)[4]).set);
  auto& md = std::get<MetricsDelta>((*back)[5]);
  EXPECT_EQ(md.comment_id, id(2));
  EXPECT_EQ(md.likes, 0);
  EXPECT_EQ(md.dislikes, -3);
  EXPECT_EQ(md.replies, 1);
  EXPECT_EQ(md.at, 7);
  auto& sd = std::get<StatsDelta>((*back)[6]);
  EXPECT_EQ(sd.video_id, id(3));
  EXPECT_EQ(sd.comments, -1);
  EXPECT_EQ(sd.reactions, 4);
  EXPECT_EQ(sd.at, 8);
  auto& w = std::get<RecentWrite>((*back)[7]);
  EXPECT_EQ(w.video_id, id(3));
  EXPECT_EQ(w.user_id, id(5));
  EXPECT_EQ(w.until, 1'700'000'060'000);
  auto& o = std::get<AppendOutbox>((*back)[8]);
  EXPECT_EQ(o.topic, "persistent://pavilion/comments/events");
  EXPECT_EQ(o.key, id(3).str());
  EXPECT_EQ(o.payload, std::string("{\"a\":\0}", 7));
}

TEST(CommitIntent, KindsItCannotCarryAreRefused) {
  ReactionOp op;
  for (Mutation m : {Mutation{AppendReactionOp{op}}, Mutation{SetConsumerPos{"relay", 3}},
                     Mutation{UserReactionPut{id(1), id(2), id(3), ReactionType::like}},
                     Mutation{PutReactionEvent{id(1), 5, id(2), id(3), ReactionType::like, true}}}) {
    auto body = encode_intent({IndexPut{Index::video, id(3), 1, id(1)}, m});
    ASSERT_FALSE(body.ok());
    EXPECT_EQ(body.error().code, Errc::internal);
  }
}

TEST(CommitIntent, BodiesThatAreNotOursAreErrors) {
  auto body = encode_intent(a_delete_and_a_create());
  ASSERT_TRUE(body.ok());
  EXPECT_TRUE(decode_intent(std::string(1, '\1'))->empty());
  EXPECT_FALSE(decode_intent("").ok());
  EXPECT_FALSE(decode_intent(std::string(1, '\2') + body->substr(1)).ok());  // another format
  EXPECT_FALSE(decode_intent(*body + '\x7f').ok());                          // unknown record
  // Cut anywhere inside a record: refused (a cut between records would be a shorter body,
  // which the store never writes: the row is written whole).
  size_t refused = 0;
  for (size_t n = 1; n < body->size(); ++n) refused += decode_intent(body->substr(0, n)).ok() ? 0 : 1;
  EXPECT_GE(refused, body->size() - 1 - 9);
}

}  // namespace
}  // namespace commentd::store::cql
