// Typed lint over every TypeScript file in the repository.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-restricted-syntax": [
        "error",
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: "Only the CLI reads process.env." },
      ],
    },
  },
  {
    files: ["packages/server/src/cli/**", "packages/*/test/**", "bench/**", "scripts/**"],
    rules: { "no-restricted-syntax": "off" },
  },
  {
    // The protocol codec and the client SDK run in browsers too: no static Node imports, no Node
    // globals. (The SDK loads node:net lazily, only for tcp:// URLs.)
    files: ["packages/protocol/src/**", "packages/client/src/**"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: ["node:*", "fs", "net", "buffer", "events"], message: "This package runs in browsers: no Node modules." }] }],
      "no-restricted-globals": ["error", "Buffer", "process", "window", "document"],
    },
  },
  {
    // node:test's describe() and it() return promises that the runner itself awaits.
    files: ["**/test/**", "**/*.test.ts"],
    rules: { "@typescript-eslint/no-floating-promises": "off" },
  },
);
