import Testing

@testable import ShuttleRuntime

@Suite("Bounded caches: kept per key, forgotten whole at the limit")
struct BoundedCacheTests {
    @Test("a value is made once per key, and again after the cache forgot it at its limit")
    func madeOnceUntilTheLimit() {
        var cache = BoundedCache<Int, Int>(limit: 3)
        var made = 0
        func value(_ key: Int) -> Int { cache.value(for: key) { made += 1; return key * 10 } }
        #expect([value(1), value(2), value(1), value(3)] == [10, 20, 10, 30])
        #expect(made == 3)
        // A fourth key: everything is forgotten, then the new key kept.
        #expect(value(4) == 40)
        #expect(cache[1] == nil && cache[4] == 40)
        #expect(value(1) == 10)
        #expect(made == 5)
        // Full again; a known key changes without clearing it.
        #expect(value(5) == 50)
        cache.remember(11, for: 1)
        #expect(cache[4] == 40 && cache[5] == 50 && cache[1] == 11)
    }

    @Test("update changes the value in place, making it first if missing")
    func updateInPlace() {
        var cache = BoundedCache<String, [Int]>()
        cache.update("a", orMake: { [] }) { $0.append(1) }
        let count = cache.update("a", orMake: { [99] }) { list -> Int in
            list.append(2)
            return list.count
        }
        #expect(count == 2)
        #expect(cache["a"] == [1, 2])
    }

    @Test("a key asked for twice in a row is answered as last changed")
    func lastKeyFollowsChanges() {
        var cache = BoundedCache<String, [Int]>(limit: 2)
        var made = 0
        func value(_ key: String) -> [Int] { cache.value(for: key) { made += 1; return [made] } }
        #expect(value("a") == [1] && value("a") == [1] && made == 1)
        cache.remember([7], for: "a")
        #expect(value("a") == [7])
        cache.update("a", orMake: { [] }) { $0.append(8) }
        #expect(value("a") == [7, 8])
        // Forgotten at the limit: made again, not served from the last key.
        #expect(value("b") == [2])
        #expect(value("c") == [3])
        #expect(value("b") == [4] && made == 4)
    }
}
