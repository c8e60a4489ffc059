// The Gemini API's wire types (https://ai.google.dev/api/generate-content),
// taken from the Google Gen AI SDK's types (@google/genai, type-only: nothing
// of it is loaded at run time). The SDK's enums are TypeScript enums; on the
// wire they are their string values, so Wire<T> turns every enum into the
// union of its values ('AUTO' | 'ANY' | ...), which is what the doors write
// and read. Where the gateway sends something the SDK's types do not say,
// the type below says so, with the reason.
import type {
  Candidate,
  Content,
  CountTokensResponse,
  FunctionCallingConfig,
  FunctionDeclaration,
  GenerateContentResponse,
  GenerateContentResponseUsageMetadata,
  GenerationConfig,
  Part,
  SafetySetting,
  ThinkingConfig,
  ThinkingLevel,
  Tool,
  ToolConfig,
} from '@google/genai';

/** A Gemini Schema object as gemini-schema.ts builds it from a JSON Schema (its rules are tested there). */
export type GeminiSchema = Record<string, unknown>;

/** T as JSON on the wire: enum members become their string values. */
export type Wire<T> = T extends string
  ? string extends T
    ? string
    : `${T}`
  : T extends number | boolean | bigint | symbol | null | undefined
    ? T
    : T extends readonly (infer U)[]
      ? Wire<U>[]
      : T extends (...args: never[]) => unknown
        ? never
        : T extends object
          ? { [K in keyof T]: Wire<T[K]> }
          : T;

export type GeminiPart = Wire<Part>;
/** A turn: the gateway always names the role (Gemini wants user and model turns to alternate). */
export type GeminiContent = { role: 'user' | 'model'; parts: GeminiPart[] };
/** A system instruction: parts only. */
export type GeminiSystemInstruction = Omit<Wire<Content>, 'parts'> & { parts: GeminiPart[] };
export type GeminiFunctionDeclaration = Omit<Wire<FunctionDeclaration>, 'name' | 'parameters'> & { name: string; parameters?: GeminiSchema };
export type GeminiTool = Omit<Wire<Tool>, 'functionDeclarations'> & { functionDeclarations?: GeminiFunctionDeclaration[] };
export type GeminiFunctionCallingConfig = Wire<FunctionCallingConfig>;
export type GeminiToolConfig = Omit<Wire<ToolConfig>, 'functionCallingConfig'> & { functionCallingConfig?: GeminiFunctionCallingConfig };
/**
 * thinkingLevel is written in lower case, as Google's REST examples do
 * (https://ai.google.dev/gemini-api/docs/thinking); the SDK's enum spells it in capitals.
 */
export type GeminiThinkingConfig = Omit<Wire<ThinkingConfig>, 'thinkingLevel'> & { thinkingLevel?: Lowercase<`${ThinkingLevel}`> };
export type GeminiGenerationConfig = Omit<Wire<GenerationConfig>, 'thinkingConfig' | 'responseSchema'> & {
  thinkingConfig?: GeminiThinkingConfig;
  responseSchema?: GeminiSchema;
};

/**
 * A generateContent / streamGenerateContent request body: what the SDK's
 * GenerateContentParameters (model, contents, config) becomes on the wire,
 * without the model (it goes in the URL).
 */
export type GeminiRequest = {
  contents: GeminiContent[];
  systemInstruction?: GeminiSystemInstruction;
  tools?: GeminiTool[];
  toolConfig?: GeminiToolConfig;
  generationConfig?: GeminiGenerationConfig;
  safetySettings?: Wire<SafetySetting>[];
  cachedContent?: string;
};

/** An embedContent body (https://ai.google.dev/api/embeddings); the model may be named in it too. */
export type GeminiEmbedContentRequest = { content: Wire<Content>; model?: string; taskType?: string; title?: string; outputDimensionality?: number };
/** A batchEmbedContents body: one embedContent request per input. */
export type GeminiBatchEmbedContentsRequest = { requests: GeminiEmbedContentRequest[] };

/** A countTokens request body that carries a whole request (the model is set by setCountTokensModel). */
export type GeminiCountTokensRequest = { generateContentRequest: GeminiRequest & { model?: string } };

export type GeminiCandidate = Wire<Candidate>;
export type GeminiUsageMetadata = Wire<Pick<GenerateContentResponseUsageMetadata, keyof GenerateContentResponseUsageMetadata>>;
/**
 * A generateContent answer or one streamed chunk, as JSON (the SDK's class
 * without its getters). Read from the upstream, so not trusted to be
 * well-formed: the doors check each field's type before they use it.
 */
export type GeminiResponse = Wire<Pick<GenerateContentResponse, 'candidates' | 'promptFeedback' | 'usageMetadata' | 'modelVersion' | 'responseId' | 'createTime'>>;
export type GeminiCountTokensResponse = Wire<Pick<CountTokensResponse, 'totalTokens' | 'cachedContentTokenCount'>>;
