import Foundation
import Logging
@testable import MgpuMaster
import Testing

/// docs/openapi.yaml describes exactly the routes the master serves: a route added without a line in the document
/// (or a documented path the master dropped) fails here.
@Suite struct OpenAPIDocumentTests {
    static let documentPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml").path

    /// "METHOD /path" for every operation under `paths:` (two-space path keys, four-space method keys).
    static func documentedOperations(_ yaml: String) -> Set<String> {
        var result = Set<String>()
        var inPaths = false
        var path: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:"; path = nil; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "post", "put", "delete", "patch", "head", "options"].contains(String(key)) {
                    result.insert("\(key.uppercased()) \(path)")
                }
            }
        }
        return result
    }

    @Test func everyServedRouteIsDocumentedAndNothingElse() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mgpu-openapi-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/mgpu.sqlite")
        let logger = Logger(label: "test")
        let state = try MasterState(config: MasterConfig(stateDir: dir), store: store, logger: logger)
        let credentials = try Credentials(stateDir: dir, queue: store.queue, ownerName: "tester")
        let router = APIRouter.build(state: state, credentials: credentials, logger: logger)
        let served = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })

        let documented = Self.documentedOperations(try String(contentsOfFile: Self.documentPath, encoding: .utf8))
        #expect(served.count >= 15, "the router lists \(served.count) routes")
        #expect(served.subtracting(documented).sorted() == [], "served but not in docs/openapi.yaml")
        #expect(documented.subtracting(served).sorted() == [], "in docs/openapi.yaml but not served")
    }

    @Test func parserReadsPathsAndMethodsOnly() {
        let yaml = """
        openapi: 3.0.3
        paths:
          /v1/a/{id}:
            get:
              parameters: []
            post:
              summary: x
          /b:
            get:
              responses: {}
        components:
          schemas:
            get:
              type: object
        """
        #expect(Self.documentedOperations(yaml) == ["GET /v1/a/{id}", "POST /v1/a/{id}", "GET /b"])
    }
}
