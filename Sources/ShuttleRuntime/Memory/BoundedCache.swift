/// What was worked out once for a key (a parsed backend address, a metrics
/// timer, a warning's limiter), kept for the next use. Keys come and go
/// with the config (services and backends replaced over months), so the
/// cache forgets everything when it reaches `limit` keys rather than grow
/// without bound; the work is then done again on the next use.
struct BoundedCache<Key: Hashable, Value> {
    private var values: [Key: Value] = [:]
    /// The last key asked for with `value(for:orMake:)` and its value: a
    /// run of one key (one service's requests) costs an equality check, not
    /// a hash.
    private var last: (key: Key, value: Value)?
    let limit: Int

    init(limit: Int = 4096) {
        self.limit = limit
    }

    subscript(key: Key) -> Value? { values[key] }

    mutating func remember(_ value: Value, for key: Key) {
        if values.count >= limit && values[key] == nil { values.removeAll() }
        values[key] = value
        last = nil
    }

    /// The value for `key`, made and remembered on first use.
    mutating func value(for key: Key, orMake make: () -> Value) -> Value {
        if let last, last.key == key { return last.value }
        let value: Value
        if let known = values[key] {
            value = known
        } else {
            value = make()
            remember(value, for: key)
        }
        last = (key, value)
        return value
    }

    /// Changes the value for `key` (made first if missing) in place.
    mutating func update<Result>(_ key: Key, orMake make: () -> Value, _ body: (inout Value) -> Result) -> Result {
        if values[key] == nil { remember(make(), for: key) }
        last = nil
        return body(&values[key]!)
    }
}

extension BoundedCache: Sendable where Key: Sendable, Value: Sendable {}
