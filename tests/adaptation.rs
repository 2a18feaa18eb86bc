//! Speaker adaptation over the API: a model trained to read windows against the caller's
//! running spectrum adapts every stream unless the stream opts out, says so in
//! `StreamStarted` and `GetModelInfo`, and gives the same windows for any chunking; a model
//! without it refuses a stream that asks for it.

mod common;

use common::{TestServer, config, requests, run_stream, speech_bytes};
use sentio::features::AdaptationConfig;
use sentio::model::Model;
use sentio::proto::{
    AudioEncoding, GetModelInfoRequest, SpeakerAdaptation, StreamConfig, StreamEmotionsRequest,
    stream_emotions_response::Response,
};

/// The shipped default model with an adaptation section whose prior is its own front end's
/// typical level: the mechanics under test do not depend on how the weights were trained.
fn adapting_model() -> Model {
    let mut model = Model::default_model(&candle_core::Device::Cpu).unwrap();
    if model.card.adaptation.is_none() {
        model.card.adaptation = Some(AdaptationConfig {
            prior: vec![-45.0; model.card.features.n_mels],
            prior_windows: 4.0,
        });
    }
    model
}

fn non_adapting_model() -> Model {
    let mut model = Model::default_model(&candle_core::Device::Cpu).unwrap();
    model.card.adaptation = None;
    model
}

fn asking(adaptation: SpeakerAdaptation) -> StreamConfig {
    StreamConfig {
        speaker_adaptation: adaptation as i32,
        ..config(AudioEncoding::PcmS16le, 16_000)
    }
}

/// The config a stream's `StreamStarted` reports.
async fn started_config(client: &mut Client, config: StreamConfig) -> StreamConfig {
    let first: Vec<StreamEmotionsRequest> = requests(config, &[], 1);
    let mut inbound = client
        .stream_emotions(tokio_stream::iter(first))
        .await
        .unwrap()
        .into_inner();
    match inbound.message().await.unwrap().unwrap().response {
        Some(Response::Started(s)) => s.config.unwrap(),
        other => panic!("expected StreamStarted, got {other:?}"),
    }
}

type Client =
    sentio::proto::emotion_recognizer_client::EmotionRecognizerClient<tonic::transport::Channel>;

/// `GetModelInfo.speaker_adaptation`.
async fn adapts(client: &mut Client) -> bool {
    let info = client.get_model_info(GetModelInfoRequest {}).await.unwrap();
    info.into_inner().speaker_adaptation
}

#[tokio::test]
async fn an_adapting_model_adapts_streams_unless_they_opt_out() {
    let server = TestServer::start_engine(adapting_model().into(), |_| {}).await;
    let mut client = server.client().await;
    assert!(adapts(&mut client).await);
    for (asked, got) in [
        (SpeakerAdaptation::Unspecified, SpeakerAdaptation::On),
        (SpeakerAdaptation::On, SpeakerAdaptation::On),
        (SpeakerAdaptation::Off, SpeakerAdaptation::Off),
    ] {
        let effective = started_config(&mut client, asking(asked)).await;
        assert_eq!(effective.speaker_adaptation, got as i32, "{asked:?}");
    }

    let speech = speech_bytes();
    let adapted = run_stream(
        &mut client,
        requests(asking(SpeakerAdaptation::On), &speech, 3_200),
    )
    .await;
    let rechunked = run_stream(
        &mut client,
        requests(asking(SpeakerAdaptation::On), &speech, 777),
    )
    .await;
    let plain = run_stream(
        &mut client,
        requests(asking(SpeakerAdaptation::Off), &speech, 3_200),
    )
    .await;
    for result in [&adapted, &rechunked, &plain] {
        assert!(result.status.is_none(), "{:?}", result.status);
        assert!(result.predictions.len() >= 4);
    }
    // The same windows whatever the chunking; the opted-out stream reads them differently
    // (after the first, the profile holds earlier speech).
    assert_eq!(adapted.predictions.len(), rechunked.predictions.len());
    for (a, b) in adapted.predictions.iter().zip(&rechunked.predictions) {
        assert_eq!((a.window_index, &a.scores), (b.window_index, &b.scores));
    }
    assert_eq!(adapted.predictions.len(), plain.predictions.len());
    assert!(
        adapted
            .predictions
            .iter()
            .zip(&plain.predictions)
            .any(|(a, p)| a.scores != p.scores)
    );
}

#[tokio::test]
async fn a_model_without_adaptation_refuses_a_stream_that_asks_for_it() {
    let server = TestServer::start_engine(non_adapting_model().into(), |_| {}).await;
    let mut client = server.client().await;
    assert!(!adapts(&mut client).await);
    let effective = started_config(&mut client, asking(SpeakerAdaptation::Unspecified)).await;
    assert_eq!(effective.speaker_adaptation, SpeakerAdaptation::Off as i32);

    let speech = speech_bytes();
    let refused = run_stream(
        &mut client,
        requests(asking(SpeakerAdaptation::On), &speech, 3_200),
    )
    .await;
    let status = refused.status.expect("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("speaker_adaptation"),
        "{}",
        status.message()
    );
    let unknown = StreamConfig {
        speaker_adaptation: 7,
        ..config(AudioEncoding::PcmS16le, 16_000)
    };
    let refused = run_stream(&mut client, requests(unknown, &speech, 3_200)).await;
    assert_eq!(
        refused.status.expect("refused").code(),
        tonic::Code::InvalidArgument
    );
}
