// Store: Matchbox's group selection order (through the index), duplicate and
// dangling entries, and loading a data dir with broken files beside good ones.

#include "bootserver/store.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

using testutil::TempDir;
using testutil::WriteFile;

Group MakeGroup(std::string id, std::string profile, std::map<std::string, std::string> selector) {
  Group g;
  g.id = id;
  g.profile = std::move(profile);
  g.selector = std::move(selector);
  g.source = "groups/" + id + ".json";
  return g;
}

Profile MakeProfile(std::string id) {
  Profile p;
  p.id = id;
  p.kernel = "/assets/" + id + "/vmlinuz";
  p.source = "profiles/" + id + ".json";
  return p;
}

std::string SelectedId(const StorePtr& store, const Labels& labels) {
  const Group* g = store->Select(labels);
  return g ? g->id : "<none>";
}

bool HasProblem(const std::vector<StoreProblem>& problems, const std::string& file,
                const std::string& reason_part) {
  return std::any_of(problems.begin(), problems.end(), [&](const StoreProblem& p) {
    return p.file == file && p.reason.find(reason_part) != std::string::npos;
  });
}

std::string Dump(const std::vector<StoreProblem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    out += p.ToString() + "\n";
  }
  return out;
}

// The group with more selectors wins over one with fewer that also matches.
TEST(StoreSelectTest, MostSelectorsFirst) {
  StoreContent c;
  c.profiles = {MakeProfile("p")};
  c.groups = {MakeGroup("by-mac", "p", {{"mac", "52:54:00:ab:cd:ef"}}),
              MakeGroup("by-mac-os", "p", {{"mac", "52:54:00:ab:cd:ef"}, {"os", "installed"}}),
              MakeGroup("default", "p", {})};
  auto store = Store::Build(c);
  EXPECT_EQ(SelectedId(store, {{"mac", "52:54:00:ab:cd:ef"}, {"os", "installed"}}), "by-mac-os");
  EXPECT_EQ(SelectedId(store, {{"mac", "52:54:00:ab:cd:ef"}}), "by-mac");
  EXPECT_EQ(SelectedId(store, {{"mac", "52:54:00:ab:cd:ef"}, {"os", "other"}}), "by-mac");
  EXPECT_EQ(SelectedId(store, {{"mac", "52:54:00:00:00:01"}}), "default");
  EXPECT_TRUE(store->problems().empty()) << Dump(store->problems());
}

// Equal selector counts: the larger sorted "k=v,k=v" string wins, whatever the file order.
TEST(StoreSelectTest, TiesBrokenByLargerSelectorString) {
  StoreContent c;
  c.profiles = {MakeProfile("p")};
  // "a=1,z=1" < "b=1,c=1" < "b=2,c=1" as strings.
  c.groups = {MakeGroup("az", "p", {{"a", "1"}, {"z", "1"}}),
              MakeGroup("bc2", "p", {{"b", "2"}, {"c", "1"}}),
              MakeGroup("bc", "p", {{"b", "1"}, {"c", "1"}})};
  auto store = Store::Build(c);
  Labels all = {{"a", "1"}, {"z", "1"}, {"b", "1"}, {"c", "1"}};
  EXPECT_EQ(SelectedId(store, all), "bc");
  all["b"] = "2";
  EXPECT_EQ(SelectedId(store, all), "bc2");
  EXPECT_EQ(SelectedId(store, {{"a", "1"}, {"z", "1"}}), "az");

  // One selector each: "os=b" > "os=a" cannot both match, but "zone=x" > "os=a" can.
  StoreContent c2;
  c2.profiles = {MakeProfile("p")};
  c2.groups = {MakeGroup("zone", "p", {{"zone", "x"}}), MakeGroup("os", "p", {{"os", "a"}})};
  auto store2 = Store::Build(c2);
  EXPECT_EQ(SelectedId(store2, {{"os", "a"}, {"zone", "x"}}), "zone");
  EXPECT_EQ(SelectedId(store2, {{"os", "a"}}), "os");
}

// The empty selector matches everything, including a request without labels;
// without a default group an unmatched request selects nothing.
TEST(StoreSelectTest, DefaultGroupAndNoMatch) {
  StoreContent c;
  c.profiles = {MakeProfile("p")};
  c.groups = {MakeGroup("cp1", "p", {{"mac", "00:23:24:e7:29:40"}})};
  auto without_default = Store::Build(c);
  EXPECT_EQ(SelectedId(without_default, {}), "<none>");
  EXPECT_EQ(SelectedId(without_default, {{"mac", "00:23:24:e7:29:41"}}), "<none>");
  c.groups.push_back(MakeGroup("default", "p", {}));
  auto with_default = Store::Build(c);
  EXPECT_EQ(SelectedId(with_default, {}), "default");
  EXPECT_EQ(SelectedId(with_default, {{"mac", "00:23:24:e7:29:41"}, {"x", "y"}}), "default");
  EXPECT_EQ(SelectedId(with_default, {{"mac", "00:23:24:e7:29:40"}}), "cp1");
}

// Extra request labels are ignored; a selector value must match exactly (case-sensitive).
TEST(StoreSelectTest, ExtraLabelsIgnoredValuesExact) {
  StoreContent c;
  c.profiles = {MakeProfile("p")};
  c.groups = {MakeGroup("g", "p", {{"hostname", "Node1"}})};
  auto store = Store::Build(c);
  EXPECT_EQ(SelectedId(store, {{"hostname", "Node1"}, {"uuid", "x"}, {"serial", "y"}}), "g");
  EXPECT_EQ(SelectedId(store, {{"hostname", "node1"}}), "<none>");
}

// A group whose profile is missing is still selected (no fall-through to the
// next group) and reported at build time.
TEST(StoreSelectTest, MissingProfileStillSelectedAndReported) {
  StoreContent c;
  c.profiles = {MakeProfile("p")};
  c.groups = {MakeGroup("dangling", "nope", {{"mac", "00:23:24:e7:29:40"}}),
              MakeGroup("default", "p", {})};
  auto store = Store::Build(c);
  const Group* g = store->Select({{"mac", "00:23:24:e7:29:40"}});
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->id, "dangling");
  EXPECT_EQ(store->FindProfile(g->profile), nullptr);
  EXPECT_TRUE(HasProblem(store->problems(), "groups/dangling.json",
                         "names profile \"nope\", which does not exist"))
      << Dump(store->problems());
  EXPECT_EQ(store->group_count(), 2u);
}

// Two groups with the same selector: the first file name wins, the other is
// left out and reported naming both files.
TEST(StoreSelectTest, DuplicateSelectorsFirstFileNameWins) {
  StoreContent c;
  c.profiles = {MakeProfile("p"), MakeProfile("q")};
  Group b = MakeGroup("b", "q", {{"mac", "00:23:24:e7:29:40"}});
  Group a = MakeGroup("a", "p", {{"mac", "00:23:24:e7:29:40"}});
  c.groups = {b, a};  // content order must not matter
  auto store = Store::Build(c);
  EXPECT_EQ(SelectedId(store, {{"mac", "00:23:24:e7:29:40"}}), "a");
  EXPECT_EQ(store->group_count(), 1u);
  ASSERT_EQ(store->problems().size(), 1u) << Dump(store->problems());
  EXPECT_EQ(store->problems()[0].file, "groups/b.json");
  EXPECT_NE(
      store->problems()[0].reason.find("same selector {mac=00:23:24:e7:29:40} as groups/a.json"),
      std::string::npos)
      << store->problems()[0].reason;
}

// A profile id defined twice keeps the first and is reported.
TEST(StoreSelectTest, DuplicateProfileIdReported) {
  StoreContent c;
  Profile one = MakeProfile("p");
  Profile two = MakeProfile("p");
  two.kernel = "/other";
  two.source = "profiles/p-copy.json";
  c.profiles = {one, two};
  auto store = Store::Build(c);
  ASSERT_NE(store->FindProfile("p"), nullptr);
  EXPECT_EQ(store->FindProfile("p")->kernel, "/assets/p/vmlinuz");
  EXPECT_TRUE(HasProblem(store->problems(), "profiles/p-copy.json", "defined twice"))
      << Dump(store->problems());
}

// The indexed selection answers exactly like Matchbox's linear scan (sort all
// groups, first full match) on thousands of random groups and requests.
TEST(StoreSelectTest, IndexAgreesWithLinearScan) {
  std::mt19937 rng(20261127);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const std::vector<std::string> macs = {"00:00:00:00:00:01", "00:00:00:00:00:02",
                                         "00:00:00:00:00:03", "00:00:00:00:00:04",
                                         "52:54:00:ab:cd:ef"};
  const std::vector<std::string> keys = {"os", "role", "zone", "uuid", "MAC"};
  const std::vector<std::string> values = {"a", "b", "c"};
  StoreContent c;
  c.profiles = {MakeProfile("p")};
  for (int i = 0; i < 3000; ++i) {
    std::map<std::string, std::string> sel;
    if (pick(3) != 0) {
      sel["mac"] = macs[pick(macs.size())];
    }
    size_t extra = pick(4);
    for (size_t k = 0; k < extra; ++k) {
      sel[keys[pick(keys.size())]] = values[pick(values.size())];
    }
    if (sel.empty()) {
      sel["zone"] = values[pick(values.size())];  // no default group: some requests miss
    }
    char id[16];
    std::snprintf(id, sizeof id, "g%05d", i);
    c.groups.push_back(MakeGroup(id, "p", sel));
  }
  // Matchbox's order; duplicates resolved to the first file name.
  std::vector<Group> naive = c.groups;
  std::stable_sort(naive.begin(), naive.end(), [](const Group& a, const Group& b) {
    if (a.selector.size() != b.selector.size()) {
      return a.selector.size() > b.selector.size();
    }
    std::string sa = SelectorString(a.selector);
    std::string sb = SelectorString(b.selector);
    if (sa != sb) {
      return sa > sb;
    }
    return a.source < b.source;
  });
  auto store = Store::Build(c);
  int matched = 0;
  for (int r = 0; r < 3000; ++r) {
    Labels labels;
    if (pick(5) != 0) {
      labels["mac"] = macs[pick(macs.size())];
    }
    for (const auto& k : keys) {
      if (pick(2) == 0) {
        labels[k] = values[pick(values.size())];
      }
    }
    std::string want = "<none>";
    for (const auto& g : naive) {
      bool all = std::all_of(g.selector.begin(), g.selector.end(), [&](const auto& kv) {
        auto it = labels.find(kv.first);
        return it != labels.end() && it->second == kv.second;
      });
      if (all) {
        want = g.id;
        break;
      }
    }
    matched += want != "<none>";
    ASSERT_EQ(SelectedId(store, labels), want) << "request " << r;
  }
  // The random data must exercise both outcomes.
  EXPECT_GT(matched, 100);
  EXPECT_LT(matched, 3000);
}

// The selector string is sorted by key: what ties are compared on.
TEST(SelectorStringTest, SortedKeyValuePairs) {
  EXPECT_EQ(SelectorString({{"zone", "x"}, {"mac", "m"}, {"os", "a"}}), "mac=m,os=a,zone=x");
  EXPECT_EQ(SelectorString({}), "");
}

// ParseGroup normalises a MAC selector under any-case key and keeps metadata.
TEST(ParseGroupTest, NormalisesMacSelectorAndKeepsMetadata) {
  auto g = ParseGroup(R"({"id":"cp1","name":"CP 1","profile":"p",
                          "selector":{"MAC":"52-54-00-AB-CD-EF","os":"installed"},
                          "metadata":{"pod":"10.2.0.0/16","n":3}})",
                      "groups/cp1.json");
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->id, "cp1");
  EXPECT_EQ(g->name, "CP 1");
  EXPECT_EQ(g->profile, "p");
  EXPECT_EQ(g->selector, (std::map<std::string, std::string>{{"MAC", "52:54:00:ab:cd:ef"},
                                                             {"os", "installed"}}));
  EXPECT_EQ(g->metadata["pod"], "10.2.0.0/16");
  EXPECT_EQ(g->source, "groups/cp1.json");
}

// Each malformed group is refused with the file, the field and what was expected.
TEST(ParseGroupTest, RefusesBadDocumentsNamingFileAndField) {
  struct Case {
    const char* json;
    const char* want;
  };
  for (const Case& tc : {
           Case{"{not json", "groups/x.json: invalid JSON"},
           Case{"[1,2]", "groups/x.json: want a JSON object, got array"},
           Case{R"({"id":5})", "groups/x.json: field \"id\": want a string, got number"},
           Case{R"({"profile":["p"]})", "field \"profile\": want a string, got array"},
           Case{R"({"selector":"mac"})",
                "field \"selector\": want an object of strings, got string"},
           Case{R"({"selector":{"os":1}})", "field \"selector.os\": want a string, got number"},
           Case{R"({"selector":{"mac":"00:11"}})",
                "field \"selector.mac\": \"00:11\" is not a MAC address"},
           Case{R"({"metadata":[1]})", "field \"metadata\": want an object, got array"},
       }) {
    auto g = ParseGroup(tc.json, "groups/x.json");
    ASSERT_FALSE(g) << tc.json;
    EXPECT_NE(g.error().message.find(tc.want), std::string::npos)
        << tc.json << " -> " << g.error().message;
    EXPECT_EQ(g.error().code, ErrorCode::kInvalid);
  }
}

// Each malformed profile is refused with the file, the field and what was expected.
TEST(ParseProfileTest, RefusesBadDocumentsNamingFileAndField) {
  struct Case {
    const char* json;
    const char* want;
  };
  for (const Case& tc : {
           Case{R"({"id":"p","boot":[]})",
                "profiles/p.json: field \"boot\": want an object, got array"},
           Case{R"({"boot":{"kernel":7}})", "field \"boot.kernel\": want a string"},
           Case{R"({"boot":{"initrd":"x"}})",
                "field \"boot.initrd\": want a list of strings, got string"},
           Case{R"({"boot":{"args":["a",2]}})",
                "field \"boot.args[1]\": want a string, got number"},
           Case{R"({"generic_id":{}})", "field \"generic_id\": want a string, got object"},
       }) {
    auto p = ParseProfile(tc.json, "profiles/p.json");
    ASSERT_FALSE(p) << tc.json;
    EXPECT_NE(p.error().message.find(tc.want), std::string::npos)
        << tc.json << " -> " << p.error().message;
  }
}

// A full profile parses into kernel, initrds, args and generic id.
TEST(ParseProfileTest, ParsesBootSection) {
  auto p = ParseProfile(R"({"id":"p","name":"P","generic_id":"g.tmpl",
                            "boot":{"kernel":"/k","initrd":["/i1","/i2"],"args":["a=1","b"]}})",
                        "profiles/p.json");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->kernel, "/k");
  EXPECT_EQ(p->initrd, (std::vector<std::string>{"/i1", "/i2"}));
  EXPECT_EQ(p->args, (std::vector<std::string>{"a=1", "b"}));
  EXPECT_EQ(p->generic_id, "g.tmpl");
}

// A data dir with one of each kind of broken file: every problem is reported
// with its file name and reason, and the good files still load and select.
TEST(LoadDataDirTest, BrokenFilesReportedGoodOnesLoad) {
  TempDir dir;
  WriteFile(dir / "groups/good.json",
            R"({"id":"good","profile":"good","selector":{"mac":"00:23:24:e7:29:40"}})");
  WriteFile(dir / "groups/bad-json.json", "{\"id\": ");
  WriteFile(dir / "groups/wrong-type.json", R"({"id":"w","selector":{"os":true}})");
  WriteFile(dir / "groups/dangling.json",
            R"({"id":"dangling","profile":"missing","selector":{"os":"x"}})");
  WriteFile(dir / "groups/bad-mac.json",
            R"({"id":"bm","profile":"good","selector":{"mac":"00:23:24:e7:29"}})");
  WriteFile(dir / "groups/dup.json",
            R"({"id":"dup","profile":"good","selector":{"mac":"00:23:24:E7:29:40"}})");
  WriteFile(dir / "groups/README.md", "not a group");
  WriteFile(dir / "profiles/good.json", R"({"id":"good","boot":{"kernel":"/k"}})");
  WriteFile(dir / "profiles/renamed.json", R"({"id":"other","boot":{"kernel":"/r"}})");
  WriteFile(dir / "profiles/bad-args.json", R"({"id":"bad-args","boot":{"args":"x"}})");
  WriteFile(dir / "generic/hello.tmpl", "hello {{.name}}\n");

  auto load = LoadDataDir(dir.path());
  ASSERT_TRUE(load) << load.error().message;
  auto store = Store::Build(load->content, load->problems);
  const auto& problems = store->problems();
  EXPECT_TRUE(HasProblem(problems, "groups/bad-json.json", "invalid JSON")) << Dump(problems);
  EXPECT_TRUE(HasProblem(problems, "groups/wrong-type.json",
                         "field \"selector.os\": want a string, got boolean"))
      << Dump(problems);
  EXPECT_TRUE(
      HasProblem(problems, "groups/dangling.json", "profile \"missing\", which does not exist"))
      << Dump(problems);
  EXPECT_TRUE(
      HasProblem(problems, "groups/bad-mac.json", "\"00:23:24:e7:29\" is not a MAC address"))
      << Dump(problems);
  EXPECT_TRUE(HasProblem(problems, "groups/good.json", "same selector")) << Dump(problems);
  EXPECT_TRUE(
      HasProblem(problems, "profiles/renamed.json",
                 "profile id \"other\" differs from its file name; it is served as \"renamed\""))
      << Dump(problems);
  EXPECT_TRUE(HasProblem(problems, "profiles/bad-args.json",
                         "field \"boot.args\": want a list of strings, got string"))
      << Dump(problems);
  EXPECT_EQ(problems.size(), 7u) << Dump(problems);
  // The reason does not repeat the file name.
  for (const auto& p : problems) {
    EXPECT_NE(p.reason.rfind(p.file, 0), 0u) << p.ToString();
  }

  // "dup.json" < "good.json": the duplicate with the earlier name wins.
  const Group* g = store->Select({{"mac", "00:23:24:e7:29:40"}});
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->id, "dup");
  EXPECT_EQ(store->group_count(), 2u);  // dup, dangling
  ASSERT_NE(store->FindProfile("good"), nullptr);
  ASSERT_NE(store->FindProfile("renamed"), nullptr);  // found by file name
  EXPECT_EQ(store->FindProfile("renamed")->kernel, "/r");
  EXPECT_EQ(store->FindProfile("other"), nullptr);
  EXPECT_EQ(store->profile_count(), 2u);
  ASSERT_NE(store->FindGenericTemplate("hello.tmpl"), nullptr);
  EXPECT_EQ(*store->FindGenericTemplate("hello.tmpl"), "hello {{.name}}\n");
  EXPECT_EQ(store->content().revision, "dir:" + dir.path().string());
}

// groups/ is not read recursively, and missing subdirectories are an empty store.
TEST(LoadDataDirTest, NotRecursiveAndMissingSubdirsAreEmpty) {
  TempDir dir;
  WriteFile(dir / "groups/nested/g.json", R"({"id":"g","profile":"p"})");
  auto load = LoadDataDir(dir.path());
  ASSERT_TRUE(load) << load.error().message;
  EXPECT_TRUE(load->content.groups.empty());
  EXPECT_TRUE(load->content.profiles.empty());
  EXPECT_TRUE(load->problems.empty());
}

// A data path that is not a directory fails, naming the path.
TEST(LoadDataDirTest, MissingDataPathFailsNamingIt) {
  TempDir dir;
  auto load = LoadDataDir(dir / "nope");
  ASSERT_FALSE(load);
  EXPECT_EQ(load.error().code, ErrorCode::kNotFound);
  EXPECT_NE(load.error().message.find((dir / "nope").string()), std::string::npos)
      << load.error().message;
  EXPECT_NE(load.error().message.find("not a readable directory"), std::string::npos);
}

}  // namespace
}  // namespace ironboot::bootserver
