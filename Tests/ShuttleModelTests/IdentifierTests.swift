import Testing

@testable import ShuttleModel

@Suite("Identifiers: hashed as their numbers are")
struct IdentifierTests {
    @Test("an id's hash, through a Hasher or as a dictionary asks for it, is its number's", arguments: [0, 1, 42, UInt64.max])
    func hashesAsItsNumber(raw: UInt64) {
        func hashed<T: Hashable>(_ value: T) -> Int {
            var hasher = Hasher()
            hasher.combine(value)
            return hasher.finalize()
        }
        for seed in [0, 7, -1] {
            #expect(ConnectionID(raw)._rawHashValue(seed: seed) == raw._rawHashValue(seed: seed))
            #expect(BackendID(raw)._rawHashValue(seed: seed) == raw._rawHashValue(seed: seed))
        }
        #expect(ConnectionID(raw).hashValue == raw.hashValue)
        #expect(hashed(BackendID(raw)) == hashed(raw) && hashed(ListenerID(raw)) == hashed(raw))
        #expect(hashed(RequestID(raw)) == hashed(raw))
        let table = Dictionary(uniqueKeysWithValues: (0..<1000).map { (ConnectionID($0 &+ raw), $0) })
        #expect((0..<1000).allSatisfy { table[ConnectionID($0 &+ raw)] == $0 })
    }
}
