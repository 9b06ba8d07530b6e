/**
 * API errors in PVE's shape (pve-manager PVE/HTTPServer.pm rest_handler, pve-http-server Formatter/Standard.pm):
 * the HTTP reason phrase is the message's first line, the JSON body `{"data":null,"message":"...\n"}` plus
 * `errors` for parameter errors. Messages keep PVE's trailing newline.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Readonly<Record<string, string>>,
  ) {
    super(message.endsWith("\n") ? message : `${message}\n`);
  }
}

/** 400 `Parameter verification failed.` with per-parameter messages (raise_param_exc). */
export const paramError = (errors: Record<string, string>) => new ApiError(400, "Parameter verification failed.", errors);

/** 500 from a plain `die` in the method. */
export const dieError = (message: string) => new ApiError(500, message);

/** The message pve-guest-common's load_config dies with for a VM this node does not have. */
export const noConfig = (node: string, vmid: number | string) => dieError(`Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
