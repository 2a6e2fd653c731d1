#include "events/schemas.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace commentd::events {
namespace {

TEST(EventSchemasTest, CommentEventCarriesIdNodeAndPositionAfterTheRelay) {
  ManualClock clock;
  UuidGenerator ids(clock, 3);
  Comment c;
  c.id = ids.next();
  c.video_id = ids.next();
  c.user_id = ids.next();
  c.content = "hi \"there\"";
  c.created_at = 1'700'000'000'000;
  Uuid event_id = ids.next();
  std::string json = comment_event_json(event_id, 7, "updated", c, c.created_at + 61'234);
  auto h = parse_event_header(with_position(json, 42));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->event_id, event_id.str());
  EXPECT_EQ(h->event_type, "updated");
  EXPECT_EQ(h->video_id, c.video_id);
  EXPECT_EQ(h->comment_id, c.id);
  EXPECT_EQ(h->node_id, 7u);
  EXPECT_EQ(h->position, 42u);
  EXPECT_EQ(h->at, c.created_at + 61'234) << "the change's time, not the comment's";
  EXPECT_NE(json.find("\"content\":\"hi \\\"there\\\"\""), std::string::npos);
}

TEST(EventSchemasTest, ReactionEventIsAddedOrRemoved) {
  ManualClock clock;
  UuidGenerator ids(clock, 4);
  ReactionOp op;
  op.op_id = ids.next();
  op.comment_id = ids.next();
  op.video_id = ids.next();
  op.user_id = ids.next();
  op.type = ReactionType::dislike;
  op.timestamp = 1'700'000'000'000;
  op.node_id = 9;
  auto added = parse_event_header(reaction_event_json(ids.next(), op));
  ASSERT_TRUE(added);
  EXPECT_EQ(added->event_type, "added");
  EXPECT_EQ(added->node_id, 9u);
  EXPECT_EQ(added->at, op.timestamp);
  op.type = ReactionType::none;
  EXPECT_EQ(parse_event_header(reaction_event_json(ids.next(), op))->event_type, "removed");
}

// The plan's ReactionEvent, byte for byte: the field order and spelling consumers see.
TEST(EventSchemasTest, AReactionEventIsThePlansSchemaInItsOrder) {
  ReactionOp op;
  op.op_id = *Uuid::parse("0188b2c4-1d2e-7f00-8a1b-000000000001");
  op.comment_id = *Uuid::parse("0188b2c4-1d2e-7f00-8a1b-000000000002");
  op.video_id = *Uuid::parse("0188b2c4-1d2e-7f00-8a1b-000000000003");
  op.user_id = *Uuid::parse("0188b2c4-1d2e-7f00-8a1b-0000000000ff");
  op.type = ReactionType::like;
  op.timestamp = 1'700'000'000'123;
  op.node_id = 4294967295u;
  Uuid event = *Uuid::parse("0188b2c4-1d2e-7f00-8a1b-00000000abcd");
  EXPECT_EQ(reaction_event_json(event, op),
            R"({"event_id":"0188b2c4-1d2e-7f00-8a1b-00000000abcd","event_type":"added",)"
            R"("reaction_id":"0188b2c4-1d2e-7f00-8a1b-000000000001","comment_id":"0188b2c4-1d2e-7f00-8a1b-000000000002",)"
            R"("video_id":"0188b2c4-1d2e-7f00-8a1b-000000000003","user_id":"0188b2c4-1d2e-7f00-8a1b-0000000000ff",)"
            R"("type":"like","created_at":"2023-11-14T22:13:20.123Z","node_id":4294967295})");
  op.type = ReactionType::none;
  rapidjson::Document d;
  std::string removed = reaction_event_json(event, op);
  d.Parse(removed.data(), removed.size());
  ASSERT_FALSE(d.HasParseError()) << removed;
  EXPECT_STREQ(d["event_type"].GetString(), "removed");
  EXPECT_STREQ(d["type"].GetString(), "none");
}

TEST(EventSchemasTest, AMissingOrMalformedTimeIsNoTime) {
  EXPECT_FALSE(parse_event_header(R"({"event_id":"e","event_type":"x"})")->at);
  EXPECT_FALSE(parse_event_header(R"({"event_id":"e","event_type":"x","created_at":"2024-05-01 12:00:00"})")->at);
  EXPECT_EQ(parse_event_header(R"({"event_id":"e","event_type":"x","created_at":"1970-01-01T00:00:01.500Z"})")->at,
            TimeMs{1500});
}

TEST(EventSchemasTest, WithPositionLeavesNonObjectsAloneAndHandlesEmptyObjects) {
  EXPECT_EQ(with_position("plain", 5), "plain");
  EXPECT_EQ(with_position("{}", 5), "{\"position\":5}");
  EXPECT_EQ(with_position("{\"a\":1}", 5), "{\"position\":5,\"a\":1}");
  EXPECT_FALSE(parse_event_header("{\"no_id\":1}"));
  EXPECT_FALSE(parse_event_header("not json"));
}

}  // namespace
}  // namespace commentd::events
