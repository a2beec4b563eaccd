import Foundation

extension CommandServer {
    /// The OpenAPI 3.0 document, made from the routes as registered, so it cannot list a
    /// route the server does not have. Served at `/openapi.json`.
    public func openAPIDocument() -> JSONValue {
        let routes = routeTable.withLock { $0 }
        let errorSchema: JSONValue = .object(["$ref": .string("#/components/schemas/Error")])
        var paths: [String: [String: JSONValue]] = [:]
        for r in routes {
            var operation: [String: JSONValue] = [
                "summary": .string(r.summary),
                "tags": .array([.string(r.tag)]),
                "operationId": .string(Self.operationId(r.method, r.path)),
            ]
            let parameters = Self.pathParameters(r.path).map { name -> JSONValue in
                .object(["name": .string(name), "in": .string("path"), "required": .bool(true), "schema": .object(["type": .string("string")])])
            }
            var allParameters = parameters
            if r.path.contains("/commands") || r.path.contains("/lease") || r.path.hasSuffix("/start") || r.path.hasSuffix("/resume")
                || r.path.hasSuffix("/estop/release") {
                allParameters.append(.object(["name": .string("X-Lease"), "in": .string("header"), "required": .bool(false),
                                              "description": .string("the motion lease id, for motion"), "schema": .object(["type": .string("string")])]))
            }
            if !allParameters.isEmpty { operation["parameters"] = .array(allParameters) }
            if let schema = r.requestSchema {
                let type = r.method == "PUT" ? "application/yaml" : "application/json"
                operation["requestBody"] = .object(["required": .bool(r.path != "/api/v1/lease" && r.path != "/api/v1/lease/takeover"
                                                                      && r.path != "/api/v1/compute"),
                                                    "content": .object([type: .object(["schema": schema])])])
            }
            operation["security"] = r.role == nil ? .array([]) : .array([.object(["bearer": .array([])])])
            if let role = r.role { operation["x-required-role"] = .string(role.rawValue) }
            var responses: [String: JSONValue] = [
                "default": .object(["description": .string("an error: what was wrong and what is allowed"),
                                    "content": .object(["application/json": .object(["schema": errorSchema])])]),
            ]
            let success = r.method == "POST" && (r.path == "/api/v1/scans" || r.path == "/api/v1/users" || r.path == "/api/v1/calibrations")
                ? "201" : (r.method == "POST" && (r.path == "/api/v1/estop" || r.path == "/api/v1/estop/release" || r.path.hasSuffix("/start")) ? "202" : "200")
            let mediaType = r.produces.split(separator: ";").first.map(String.init) ?? r.produces
            responses[success] = .object(["description": .string("success"),
                                          "content": .object([mediaType: .object(["schema": mediaType == "application/json"
                                                                                     ? .object([:]) : .object(["type": .string("string")])])])])
            if r.path == "/api/v1/ws" {
                responses.removeValue(forKey: success)
                responses["101"] = .object(["description": .string("switching to the WebSocket protocol: telemetry and command feedback as JSON text messages")])
            }
            if r.path == "/api/v1/commands" {
                responses["202"] = .object(["description": .string("accepted; follow it at /api/v1/commands/{id}"),
                                            "content": .object(["application/json": .object(["schema": .object([:])])])])
            }
            if r.role != nil {
                responses["401"] = .object(["description": .string("no token, a bad token or an expired token"),
                                            "content": .object(["application/json": .object(["schema": errorSchema])])])
            }
            operation["responses"] = .object(responses)
            paths[r.path, default: [:]][r.method.lowercased()] = .object(operation)
        }
        return .object([
            "openapi": .string("3.0.3"),
            "info": .object(["title": .string("Radiation-inspection robot command API"), "version": .string("1.0.0"),
                             "description": .string("Officers drive the robot and run SN/T 0570-2007 container scans. "
                                                    + "Log in at /api/v1/login and send 'Authorization: Bearer TOKEN'. Motion needs the "
                                                    + "motion lease (X-Lease header); e-stop needs none.")]),
            "paths": .object(paths.mapValues { .object($0) }),
            "components": .object([
                "securitySchemes": .object(["bearer": .object(["type": .string("http"), "scheme": .string("bearer")])]),
                "schemas": .object(["Error": .object([
                    "type": .string("object"), "required": .array([.string("error")]),
                    "properties": .object(["error": .object([
                        "type": .string("object"), "required": .array([.string("code"), .string("message")]),
                        "properties": .object(["code": .object(["type": .string("string")]), "message": .object(["type": .string("string")])]),
                    ])]),
                ])]),
            ]),
        ])
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").compactMap { part in
            guard let open = part.firstIndex(of: "{"), let close = part.firstIndex(of: "}") else { return nil }
            return String(part[part.index(after: open)..<close])
        }
    }

    static func operationId(_ method: String, _ path: String) -> String {
        let words = path.split(whereSeparator: { "/{}.".contains($0) }).filter { $0 != "api" && $0 != "v1" }
        return method.lowercased() + words.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
}
