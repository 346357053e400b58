/// One thing wrong with a config or an admin request: where (a JSON path
/// such as `services[2].backends[0].address`) and why.
public struct ConfigProblem: Equatable, Hashable, Sendable, CustomStringConvertible, Codable {
    /// JSON path of the offending value; empty for the document itself.
    public var path: String
    /// What is wrong with it, in words a user can act on.
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}

/// Builds JSON paths: `services[2].backends[0].address`.
public struct JSONPath: Equatable, Hashable, Sendable, CustomStringConvertible {
    public private(set) var description: String

    public init(_ text: String = "") { description = text }

    public func key(_ name: String) -> JSONPath {
        JSONPath(description.isEmpty ? name : "\(description).\(name)")
    }

    public func index(_ i: Int) -> JSONPath { JSONPath("\(description)[\(i)]") }

    /// A problem at this path.
    public func problem(_ reason: String) -> ConfigProblem { ConfigProblem(path: description, reason: reason) }
}
