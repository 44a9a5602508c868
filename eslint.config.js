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
    // The protocol codec runs in browsers too: no Node or DOM APIs.
    files: ["packages/protocol/src/**"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: ["node:*", "fs", "net", "buffer", "events"], message: "@shardless/protocol is pure: no Node modules." }] }],
      "no-restricted-globals": ["error", "Buffer", "process", "window", "document"],
    },
  },
  {
    // node:test's describe() and it() return promises that the runner itself awaits.
    files: ["**/test/**", "**/*.test.ts"],
    rules: { "@typescript-eslint/no-floating-promises": "off" },
  },
);
