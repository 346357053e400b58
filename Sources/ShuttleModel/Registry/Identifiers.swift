// The ids hash as their number does, through `UInt64`'s one-shot hash when
// a dictionary asks (`_rawHashValue(seed:)`, the requirement Dictionary and
// Set call): the synthesized conformance went through a whole `Hasher`, and
// every report of every request looks up its connection by id.

/// One backend as configured at one time. A backend that is replaced (its
/// config changed) gets a new id, so late events about the old one (a check
/// result, a connection closing) never touch the new one.
public struct BackendID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    public var description: String { "b\(raw)" }
    public func hash(into hasher: inout Hasher) { hasher.combine(raw) }
    /// As a dictionary asks for it: `UInt64`'s own one-shot hash (see the top of the file).
    public func _rawHashValue(seed: Int) -> Int { raw._rawHashValue(seed: seed) }
}

/// One listening socket asked for by the model.
public struct ListenerID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    public var description: String { "l\(raw)" }
    public func hash(into hasher: inout Hasher) { hasher.combine(raw) }
    /// As a dictionary asks for it: `UInt64`'s own one-shot hash (see the top of the file).
    public func _rawHashValue(seed: Int) -> Int { raw._rawHashValue(seed: seed) }
}

/// A client connection (or UDP flow), numbered by the driver, unique while open.
public struct ConnectionID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    public var description: String { "c\(raw)" }
    public func hash(into hasher: inout Hasher) { hasher.combine(raw) }
    /// As a dictionary asks for it: `UInt64`'s own one-shot hash (see the top of the file).
    public func _rawHashValue(seed: Int) -> Int { raw._rawHashValue(seed: seed) }
}

/// An admin request, numbered by the driver, answered by a `.reply` action.
public struct RequestID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    public var description: String { "r\(raw)" }
    public func hash(into hasher: inout Hasher) { hasher.combine(raw) }
    /// As a dictionary asks for it: `UInt64`'s own one-shot hash (see the top of the file).
    public func _rawHashValue(seed: Int) -> Int { raw._rawHashValue(seed: seed) }
}
