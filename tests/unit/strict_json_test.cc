// The strict JSON reader shared by the pipeline config and the AIE target
// (core/strict_json.h): parse errors, duplicate keys, type names, key paths,
// typed reads with the first error kept, unknown keys.
#include "core/strict_json.h"

#include <gtest/gtest.h>

namespace wbs {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

TEST(StrictJson, ParseErrorsNameTheSource) {
  auto r = ParseStrictJson<Json>("{\"a\": 1,}", "bad.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kParseError);
  EXPECT_EQ(r.status().message().rfind("bad.json: not valid JSON: ", 0), 0u)
      << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
}

TEST(StrictJson, CommentsOnlyWhenAllowed) {
  const std::string text = "{\n  // why\n  \"a\": 1 /* and */\n}";
  EXPECT_FALSE(ParseStrictJson<Json>(text, "c.json").ok());
  StrictJsonOptions o;
  o.allow_comments = true;
  auto r = ParseStrictJson<OrderedJson>(text, "c.json", o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["a"], 1);
}

TEST(StrictJson, DuplicateKeysAtAnyDepthWhenRejected) {
  const std::string text = R"({"a": {"x": 1, "y": {"x": 2}}, "b": {"x": 3, "x": 4}})";
  // nlohmann's default: the last one wins.
  auto lenient = ParseStrictJson<Json>(text, "d.json");
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ((*lenient)["b"]["x"], 4);
  StrictJsonOptions o;
  o.reject_duplicate_keys = true;
  auto r = ParseStrictJson<Json>(text, "d.json", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "d.json: duplicate key 'x'");
  // The same key in sibling and nested objects is not a duplicate.
  ASSERT_TRUE(ParseStrictJson<Json>(R"({"a": {"x": 1, "y": {"x": 2}}, "x": 3})", "d.json", o).ok());
}

TEST(StrictJson, TypeNamesAndKeyPaths) {
  EXPECT_STREQ(JsonTypeName(Json(true)), "a boolean");
  EXPECT_STREQ(JsonTypeName(Json(3)), "an integer");
  EXPECT_STREQ(JsonTypeName(Json(3u)), "an integer");
  EXPECT_STREQ(JsonTypeName(Json(1.5)), "a number");
  EXPECT_STREQ(JsonTypeName(OrderedJson("s")), "a string");
  EXPECT_STREQ(JsonTypeName(Json::array()), "an array");
  EXPECT_STREQ(JsonTypeName(Json::object()), "an object");
  EXPECT_STREQ(JsonTypeName(Json()), "null");
  EXPECT_EQ(JsonKeyPath("", "a"), "a");
  EXPECT_EQ(JsonKeyPath("a.b", "c"), "a.b.c");
}

TEST(StrictJson, FirstUnknownKey) {
  const Json schema = {{"a", 1}, {"b", 2}};
  EXPECT_EQ(FirstUnknownKey(Json{{"a", 0}}, schema), nullptr);
  const Json user = {{"a", 0}, {"c", 0}};
  const std::string* unknown = FirstUnknownKey(user, schema);
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(*unknown, "c");
  EXPECT_EQ(*FirstUnknownKey(user, std::set<std::string>{"c"}), "a");
}

TEST(StrictJson, ReaderReadsTypedValuesAndKeepsDefaults) {
  const Json j = {{"i", 7}, {"big", int64_t{1} << 40}, {"d", 2}, {"s", "x"}, {"o", {{"k", 1}}}};
  Status st;
  JsonObjectReader r(j, "top", &st);
  int i = 0, absent = 42;
  int64_t big = 0;
  double d = 0;
  std::string s;
  r.Int("i", &i);
  r.Int("absent", &absent);
  r.Int64("big", &big);
  r.Double("d", &d);  // an integer is a number
  r.String("s", &s);
  JsonObjectReader o(r.Object("o"), "top.o", &st);
  int k = 0;
  o.Int("k", &k);
  o.Finish();
  r.Finish();
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(i, 7);
  EXPECT_EQ(absent, 42);
  EXPECT_EQ(big, int64_t{1} << 40);
  EXPECT_EQ(d, 2.0);
  EXPECT_EQ(s, "x");
  EXPECT_EQ(k, 1);
}

// The error after `read` and Finish() on `j` (the reader's path is "p").
template <class Read>
std::string ReadError(const Json& j, Read read) {
  Status st;
  JsonObjectReader r(j, "p", &st);
  read(r);
  r.Finish();
  return st.message();
}

TEST(StrictJson, ReaderErrorsNameTheKeyPath) {
  int i = 0;
  int64_t i64 = 0;
  double d = 0;
  std::string s;
  EXPECT_EQ(ReadError({{"n", "4"}}, [&](auto& r) { r.Int("n", &i); }),
            "p.n: must be an integer, got a string");
  EXPECT_EQ(ReadError({{"n", 4.5}}, [&](auto& r) { r.Int("n", &i); }),
            "p.n: must be an integer, got 4.5");
  EXPECT_EQ(ReadError({{"n", int64_t{1} << 40}}, [&](auto& r) { r.Int("n", &i); }),
            "p.n: 1099511627776 is out of range");
  EXPECT_EQ(ReadError({{"n", uint64_t{1} << 63}}, [&](auto& r) { r.Int64("n", &i64); }),
            "p.n: 9223372036854775808 is out of range");
  EXPECT_EQ(ReadError({{"n", true}}, [&](auto& r) { r.Double("n", &d); }),
            "p.n: must be a number, got a boolean");
  EXPECT_EQ(ReadError({{"n", 1}}, [&](auto& r) { r.String("n", &s); }),
            "p.n: must be a string, got an integer");
  EXPECT_EQ(ReadError({{"n", 1}}, [&](auto& r) { r.Object("n"); }),
            "p.n: must be an object, got an integer");
  EXPECT_EQ(ReadError({{"n", 1}, {"typo", 2}}, [&](auto& r) { r.Int("n", &i); }),
            "p.typo: unknown key");
  // The first error sticks: a later bad value and the unknown key are not reported.
  EXPECT_EQ(ReadError({{"a", "x"}, {"b", "y"}, {"typo", 0}},
                      [&](auto& r) {
                        r.Int("a", &i);
                        r.Int("b", &i);
                      }),
            "p.a: must be an integer, got a string");
  // Top-level keys have no prefix.
  Status st;
  const Json j = {{"typo", 1}};
  JsonObjectReader top(j, "", &st);
  top.Finish();
  EXPECT_EQ(st.message(), "typo: unknown key");
}

}  // namespace
}  // namespace wbs
