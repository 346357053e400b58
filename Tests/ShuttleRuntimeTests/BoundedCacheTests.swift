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
}
