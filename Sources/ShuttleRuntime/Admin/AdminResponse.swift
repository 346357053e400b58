import FoundationEssentials
import NIOHTTP1
import ShuttleModel

/// One answer of the admin API: a status, a JSON body, and the headers that
/// go with them. Built by the routes, written by `AdminConnection`.
struct AdminResponse: Sendable {
    var status: HTTPResponseStatus
    /// Always JSON, also for errors, so that a script can parse every answer.
    var body: Data
    /// Headers beyond Content-Type and Content-Length (`Allow`, `Warning`), in order.
    var headers: [(name: String, value: String)] = []
    /// JSON for everything but the metrics.
    var contentType = "application/json"

    /// `value` as JSON.
    static func json<T: Encodable>(_ status: HTTPResponseStatus, _ value: T) -> AdminResponse {
        AdminResponse(status: status, body: ConfigCoding.encodeValue(value))
    }

    /// 200 with the whole running config: what every mutating call answers.
    static func config(_ config: Config) -> AdminResponse {
        AdminResponse(status: .ok, body: ConfigCoding.encode(config))
    }

    /// An error: `{"error": summary, "problems": [...]}`, problems left out when none.
    static func error(
        _ status: HTTPResponseStatus, _ summary: String, problems: [ConfigProblem] = []
    ) -> AdminResponse {
        var listed = Array(problems.prefix(maxProblems))
        if problems.count > listed.count {
            // A body of a million wrong elements must not get an answer of
            // a hundred megabytes; the summary still counts them all.
            listed.append(ConfigProblem(path: "", reason: "\(problems.count - listed.count) more problems not listed"))
        }
        let body = AdminErrorBody(error: oneLine(summary), problems: listed.isEmpty ? nil : listed)
        return json(status, body)
    }

    static let maxProblems = 100

    /// 400 for a body that cannot be applied: malformed, wrong types, invalid.
    static func invalid(_ problems: [ConfigProblem]) -> AdminResponse {
        error(.badRequest, summary(of: problems), problems: problems)
    }

    static func notFound(_ message: String) -> AdminResponse {
        error(.notFound, message)
    }

    /// The model's answer to a command. `addressPath` says where the address
    /// of a service that failed to bind sits in the request body, if it does.
    static func reply(_ reply: AdminReply, addressPath: (String) -> JSONPath?) -> AdminResponse {
        switch reply {
        case .applied(let config):
            return .config(config)
        case .rejected(let problems):
            return .invalid(problems)
        case .notFound(let message):
            return .notFound(message)
        case .bindFailed(let service, let address, let network, let reason):
            let summary = "service \"\(service)\" cannot listen on \(address) (\(network.rawValue)): \(reason); nothing changed"
            let problems = addressPath(service).map {
                [$0.problem("cannot listen on \(address) (\(network.rawValue)): \(reason)")]
            }
            return error(.conflict, summary, problems: problems ?? [])
        }
    }

    /// Unknown keys of the body, one `Warning` header each (RFC 9111's
    /// "199 Miscellaneous warning"), so that a typo such as `adress` is seen
    /// even when the call succeeds.
    mutating func addWarnings(_ warnings: [ConfigProblem]) {
        // A hostile body can hold a million unknown keys; the header block
        // must stay small.
        let shown = warnings.prefix(Self.maxWarnings)
        for warning in shown {
            headers.append(("Warning", Self.warningValue(warning.description)))
        }
        if warnings.count > shown.count {
            headers.append(("Warning", Self.warningValue("\(warnings.count - shown.count) more unknown keys, ignored")))
        }
    }

    static let maxWarnings = 20

    /// `199 shuttle "text"`, with the text made safe for a quoted-string:
    /// `"` and `\` escaped, anything outside printable ASCII replaced, since
    /// a key name is the client's text and must not split the header.
    static func warningValue(_ text: String) -> String {
        var quoted = ""
        for scalar in text.unicodeScalars.prefix(500) {
            switch scalar {
            case "\"", "\\": quoted += "\\\(scalar)"
            case " "..."~": quoted.unicodeScalars.append(scalar)
            default: quoted += "?"
            }
        }
        return "199 shuttle \"\(quoted)\""
    }

    /// The first problem, and how many more there are.
    static func summary(of problems: [ConfigProblem]) -> String {
        guard let first = problems.first else { return "invalid request" }
        let more = problems.count - 1
        return first.description + (more == 0 ? "" : " (and \(more) more problem\(more == 1 ? "" : "s"))")
    }

    /// Error summaries are one line, whatever the parser's message holds.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// The JSON of an error answer.
struct AdminErrorBody: Encodable, Sendable {
    var error: String
    var problems: [ConfigProblem]?
}
