// The model-list routes: GET /v1/models, /v1beta/models and one model by
// name, in Google's shape (https://ai.google.dev/api/models) or OpenAI's
// (https://platform.openai.com/docs/api-reference/models), aliases included,
// and the Claude models Vertex lanes serve (Anthropic's shape for Anthropic clients).
import type { RequestContext } from '../../http/router.ts';
import { HttpError } from '../../http/http-util.ts';
import { sendJsonBody } from '../engine.ts';
import { aliasDescription, aliasesFor, geminiModelList, openAIModel, openAIModelList } from '../models.ts';
import type { RouteContext } from './context.ts';
import { claudeModelEntries } from '../anthropic/vertex-claude.ts';

/** Anthropic's model list shape (https://docs.anthropic.com/en/api/models-list). */
function anthropicModelList(ids: string[], createdAt: string) {
  const data = ids.map((id) => ({ type: 'model', id, display_name: id, created_at: createdAt }));
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

export function modelRoutes(rc: RouteContext) {
  const { deps, modelCache, families, clock } = rc;

  async function listGemini(ctx: RequestContext): Promise<void> {
    const models = await modelCache.get();
    sendJsonBody(ctx.res, 200, geminiModelList(models, aliasesFor(deps.config().model_aliases), families.pick));
  }

  async function listOpenAI(ctx: RequestContext): Promise<void> {
    const cfg = deps.config();
    const created = Math.floor(clock.now() / 1000);
    // Claude on Vertex AI: the Claude models an account with a Vertex lane can serve.
    const claude = deps.pool.canServe('vertex') ? claudeModelEntries(cfg.vertex_claude_models) : [];
    if (ctx.req.headers['anthropic-version'] !== undefined) {
      // Anthropic's clients (the SDK's models.list()) get Anthropic's shape: the Claude models.
      sendJsonBody(ctx.res, 200, anthropicModelList(claude.map((c) => c.id), new Date(created * 1000).toISOString()));
      return;
    }
    const models = await modelCache.get();
    const list = openAIModelList(models, aliasesFor(cfg.model_aliases), created, families.pick);
    const ids = new Set(list.data.map((m) => m.id));
    const extra = claude.filter((c) => !ids.has(c.id)).map((c) => ({ id: c.id, object: 'model' as const, created, owned_by: 'anthropic', resolves_to: `vertex:${c.vertexModel}` }));
    sendJsonBody(ctx.res, 200, { ...list, data: [...extra, ...list.data] });
  }

  async function getModel(ctx: RequestContext, version: string, google: boolean): Promise<void> {
    const name = ctx.params.model!;
    if (name.includes(':')) throw new HttpError(405, 'method_not_allowed', `use POST for ${version}/models/${name}`);
    const aliases = aliasesFor(deps.config().model_aliases);
    const models = await modelCache.get();
    const bare = name.replace(/^models\//, '');
    const isAlias = Object.hasOwn(aliases.source, bare);
    const target = aliases.resolve(bare, families.pick);
    const found = models.find((m) => m.name === `models/${bare}`) ?? models.find((m) => m.name === `models/${target}`);
    const configured = aliases.target(bare);
    if (!found && !isAlias) {
      const msg = `models/${bare} is not found for API version ${version}. Call ListModels to see the list of available models.`;
      throw new HttpError(404, 'model_not_found', msg);
    }
    if (google) {
      sendJsonBody(ctx.res, 200, found && found.name === `models/${bare}` ? found : { ...(found ?? {}), name: `models/${bare}`, description: aliasDescription(configured, target) });
    } else {
      const alias = !found || found.name !== `models/${bare}` ? { target: configured, model: target } : null;
      sendJsonBody(ctx.res, 200, openAIModel(bare, Math.floor(clock.now() / 1000), alias));
    }
  }

  return { listGemini, listOpenAI, getModel };
}
